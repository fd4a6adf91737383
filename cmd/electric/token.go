package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/config"
)

// tokenAuthFlags are the --key and --issuer flags of the token subcommands.
type tokenAuthFlags struct {
	key, issuer string
}

func (f *tokenAuthFlags) register(cmd *cobra.Command) {
	// No defaults from the environment here: cobra would print the key in --help.
	cmd.Flags().StringVar(&f.key, "key", "", "HS256 signing key (default $"+config.EnvSigningKey+")")
	cmd.Flags().StringVar(&f.issuer, "issuer", "", "issuer, the iss claim (default $"+config.EnvSigningIssuer+")")
}

// resolve is the key and issuer in effect: each flag, else its variable.
func (f *tokenAuthFlags) resolve() tokenAuth {
	a := tokenAuth{Key: f.key, Issuer: f.issuer}
	if a.Key == "" {
		a.Key = os.Getenv(config.EnvSigningKey)
		// The rotation keys go with the signing key of the environment, as the
		// engine reads them; an explicit --key means exactly that key.
		for _, k := range strings.Split(os.Getenv(config.EnvVerifyKeys), ",") {
			if k != "" {
				a.VerifyKeys = append(a.VerifyKeys, k)
			}
		}
	}
	if a.Issuer == "" {
		a.Issuer = os.Getenv(config.EnvSigningIssuer)
	}
	return a
}

// tokenAuth is the signing key and issuer the token subcommands use, and the
// further keys verify accepts (SATELLITE_AUTH_VERIFY_KEYS).
type tokenAuth struct {
	Key, Issuer string
	VerifyKeys  []string
}

// authenticator returns the JWT authenticator, refusing insecure mode: a token
// generated without a key would only be the user id.
func (ta tokenAuth) authenticator() (*auth.Authenticator, error) {
	a, err := auth.New(auth.Options{SigningKey: ta.Key, Issuer: ta.Issuer, VerifyKeys: ta.VerifyKeys})
	if err == nil && a.Insecure() {
		err = auth.ErrNotConfigured
	}
	if errors.Is(err, auth.ErrNotConfigured) {
		return nil, fmt.Errorf("JWT authentication is not configured: set %s (at least %d bytes) and %s, or pass --key and --issuer; without them electric runs in insecure mode, where a Satellite's token is just its user id",
			config.EnvSigningKey, auth.MinKeyBytes, config.EnvSigningIssuer)
	}
	return a, err
}

// tokenGenOptions are token gen's flags and arguments, checked.
type tokenGenOptions struct {
	tokenAuth
	TTL    time.Duration
	Format string // text, csv or json
	Output string // file to write, "" for stdout
	Users  []string
}

// tokenVerifyOptions are token verify's flags and argument.
type tokenVerifyOptions struct {
	tokenAuth
	Token string
}

// tokenRunners are what the token subcommands do once their flags are parsed
// into options.
type tokenRunners struct {
	gen    func(*cobra.Command, tokenGenOptions) error
	verify func(*cobra.Command, tokenVerifyOptions) error
}

func newTokenCmd() *cobra.Command {
	return newTokenCmdWith(tokenRunners{gen: runTokenGen, verify: runTokenVerify})
}

// newTokenCmdWith is token with its behaviour as a parameter, so that flag
// parsing is tested apart from signing and checking tokens.
func newTokenCmdWith(run tokenRunners) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Generate and check Satellite authentication tokens (JWT)",
		Long: `Satellites authenticate with an HS256 JWT signed with SATELLITE_AUTH_SIGNING_KEY
and issued by SATELLITE_AUTH_SIGNING_ISS; the engine must run with the same two
values. Without them the engine runs in insecure mode and takes any token as the
user id.`,
		Example: `  export SATELLITE_AUTH_SIGNING_KEY=00000000000000000000000000000000
  export SATELLITE_AUTH_SIGNING_ISS=my.electric.server
  electric token gen alice bob
  electric token verify "$(electric token gen alice --format csv | cut -d, -f2)"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTokenGenCmd(run.gen), newTokenVerifyCmd(run.verify))
	return cmd
}

// generatedToken is one user's token in the output.
type generatedToken struct {
	UserID string    `json:"-"`
	Token  string    `json:"token"`
	Expiry time.Time `json:"expiry"`
}

func newTokenGenCmd(run func(*cobra.Command, tokenGenOptions) error) *cobra.Command {
	var (
		f                   tokenAuthFlags
		ttl, format, output string
	)
	cmd := &cobra.Command{
		Use:   "gen USER_ID...",
		Short: "Generate an access token for each user id",
		Long: `Generate an access token for each user id (the seed's mix electric.gen.token).

Formats: text (readable, the default on a terminal), csv (user_id,token,expiry;
the default with --output) and json ({"<user_id>": {"token": …, "expiry": …}}).
Expiries are RFC 3339 timestamps in UTC.`,
		Example: `  electric token gen alice
  electric token gen alice bob --ttl 1h --format json
  electric token gen alice --ttl 3600             # seconds, as the seed's --ttl
  electric token gen alice bob --output tokens.csv
  electric token gen alice --key "$KEY" --issuer my.electric.server`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := parseTokenGen(f.resolve(), ttl, format, output, args)
			if err != nil {
				return fmt.Errorf("token gen: %w", err)
			}
			return run(cmd, o)
		},
	}
	cmd.Flags().StringVar(&ttl, "ttl", "8760h", "how long the tokens are valid: a duration (90m, 24h, 30d) or seconds")
	cmd.Flags().StringVar(&format, "format", "", "output format: text, csv or json (default text, or csv with --output)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the tokens to this file (mode 0600) instead of stdout")
	f.register(cmd)
	return cmd
}

// parseTokenGen checks token gen's flags and user ids, in the order the
// errors are reported: format, ttl, user ids.
func parseTokenGen(ta tokenAuth, ttl, format, output string, users []string) (tokenGenOptions, error) {
	if format == "" {
		format = "text"
		if output != "" {
			format = "csv"
		}
	}
	switch format {
	case "text", "csv", "json":
	default:
		return tokenGenOptions{}, fmt.Errorf("invalid format %q: use text, csv or json", format)
	}
	d, err := parseTTL(ttl)
	if err != nil {
		return tokenGenOptions{}, err
	}
	seen := map[string]bool{}
	for _, u := range users {
		if strings.TrimSpace(u) == "" {
			return tokenGenOptions{}, errors.New("a user id is empty")
		}
		if seen[u] {
			return tokenGenOptions{}, fmt.Errorf("user id %q is given twice", u)
		}
		seen[u] = true
	}
	return tokenGenOptions{tokenAuth: ta, TTL: d, Format: format, Output: output, Users: users}, nil
}

func runTokenGen(cmd *cobra.Command, o tokenGenOptions) error {
	a, err := o.authenticator()
	if err != nil {
		return fmt.Errorf("token gen: %w", err)
	}

	toks := make([]generatedToken, 0, len(o.Users))
	for _, u := range o.Users {
		tok, exp, err := a.Generate(u, o.TTL)
		if err != nil {
			return fmt.Errorf("token gen: %w", err)
		}
		toks = append(toks, generatedToken{UserID: u, Token: tok, Expiry: exp})
	}

	if o.Output == "" {
		return writeTokens(cmd.OutOrStdout(), o.Format, toks)
	}
	var buf bytes.Buffer
	if err := writeTokens(&buf, o.Format, toks); err != nil {
		return fmt.Errorf("token gen: %w", err)
	}
	// Tokens are credentials: not readable by other users.
	if err := os.WriteFile(o.Output, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("token gen: writing tokens: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d token(s) to %s (%s)\n", len(toks), o.Output, o.Format)
	return nil
}

// parseTTL accepts a Go duration, a number of days ("30d") or plain seconds.
func parseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		d = time.Duration(n) * time.Second
	} else if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid --ttl %q: use a duration like 90m, 24h or 30d, or seconds", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, fmt.Errorf("invalid --ttl %q: use a duration like 90m, 24h or 30d, or seconds", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid --ttl %q: it must be positive", s)
	}
	return d, nil
}

func writeTokens(w io.Writer, format string, toks []generatedToken) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		for _, t := range toks {
			if err := cw.Write([]string{t.UserID, t.Token, t.Expiry.Format(time.RFC3339)}); err != nil {
				return fmt.Errorf("writing csv: %w", err)
			}
		}
		cw.Flush()
		return cw.Error()
	case "json":
		m := make(map[string]generatedToken, len(toks))
		for _, t := range toks {
			m[t.UserID] = t
		}
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding json: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	default:
		// Colour only when w is a terminal (and NO_COLOR is unset).
		r := lipgloss.NewRenderer(w)
		label := r.NewStyle().Bold(true)
		token := r.NewStyle().Foreground(lipgloss.Color("2"))
		for i, t := range toks {
			if i > 0 {
				fmt.Fprintln(w)
			}
			_, err := fmt.Fprintf(w, "%s %s\n%s %s\n%s %s\n",
				label.Render("user id:"), t.UserID,
				label.Render("  token:"), token.Render(t.Token),
				label.Render(" expiry:"), t.Expiry.Format(time.RFC3339))
			if err != nil {
				return err
			}
		}
		return nil
	}
}

func newTokenVerifyCmd(run func(*cobra.Command, tokenVerifyOptions) error) *cobra.Command {
	var f tokenAuthFlags
	cmd := &cobra.Command{
		Use:   "verify TOKEN",
		Short: "Check a token as the engine would and print its user id",
		Example: `  electric token verify eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…
  electric token verify "$TOKEN" --key "$KEY" --issuer my.electric.server`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd, tokenVerifyOptions{tokenAuth: f.resolve(), Token: strings.TrimSpace(args[0])})
		},
	}
	f.register(cmd)
	return cmd
}

func runTokenVerify(cmd *cobra.Command, o tokenVerifyOptions) error {
	a, err := o.authenticator()
	if err != nil {
		return fmt.Errorf("token verify: %w", err)
	}
	user, err := a.Validate(o.Token)
	if err != nil {
		return fmt.Errorf("token verify: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "valid access token for user id %s\n", user)
	return nil
}
