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

// tokenAuthFlags are the signing key and issuer, from flags or the environment.
type tokenAuthFlags struct {
	key, issuer string
}

func (f *tokenAuthFlags) register(cmd *cobra.Command) {
	// No defaults from the environment here: cobra would print the key in --help.
	cmd.Flags().StringVar(&f.key, "key", "", "HS256 signing key (default $"+config.EnvSigningKey+")")
	cmd.Flags().StringVar(&f.issuer, "issuer", "", "issuer, the iss claim (default $"+config.EnvSigningIssuer+")")
}

// authenticator returns the JWT authenticator, refusing insecure mode: a token
// generated without a key would only be the user id.
func (f *tokenAuthFlags) authenticator() (*auth.Authenticator, error) {
	key, iss := f.key, f.issuer
	if key == "" {
		key = os.Getenv(config.EnvSigningKey)
	}
	if iss == "" {
		iss = os.Getenv(config.EnvSigningIssuer)
	}
	a, err := auth.New(auth.Options{SigningKey: key, Issuer: iss})
	if err == nil && a.Insecure() {
		err = auth.ErrNotConfigured
	}
	if errors.Is(err, auth.ErrNotConfigured) {
		return nil, fmt.Errorf("JWT authentication is not configured: set %s (at least %d bytes) and %s, or pass --key and --issuer; without them electric runs in insecure mode, where a Satellite's token is just its user id",
			config.EnvSigningKey, auth.MinKeyBytes, config.EnvSigningIssuer)
	}
	return a, err
}

func newTokenCmd() *cobra.Command {
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
	cmd.AddCommand(newTokenGenCmd(), newTokenVerifyCmd())
	return cmd
}

type tokenGenOptions struct {
	tokenAuthFlags
	ttl    string
	format string
	output string
}

// generatedToken is one user's token in the output.
type generatedToken struct {
	UserID string    `json:"-"`
	Token  string    `json:"token"`
	Expiry time.Time `json:"expiry"`
}

func newTokenGenCmd() *cobra.Command {
	o := &tokenGenOptions{}
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
			return runTokenGen(cmd, o, args)
		},
	}
	cmd.Flags().StringVar(&o.ttl, "ttl", "8760h", "how long the tokens are valid: a duration (90m, 24h, 30d) or seconds")
	cmd.Flags().StringVar(&o.format, "format", "", "output format: text, csv or json (default text, or csv with --output)")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the tokens to this file (mode 0600) instead of stdout")
	o.register(cmd)
	return cmd
}

func runTokenGen(cmd *cobra.Command, o *tokenGenOptions, users []string) error {
	format := o.format
	if format == "" {
		format = "text"
		if o.output != "" {
			format = "csv"
		}
	}
	switch format {
	case "text", "csv", "json":
	default:
		return fmt.Errorf("token gen: invalid format %q: use text, csv or json", format)
	}
	ttl, err := parseTTL(o.ttl)
	if err != nil {
		return fmt.Errorf("token gen: %w", err)
	}
	seen := map[string]bool{}
	for _, u := range users {
		if strings.TrimSpace(u) == "" {
			return errors.New("token gen: a user id is empty")
		}
		if seen[u] {
			return fmt.Errorf("token gen: user id %q is given twice", u)
		}
		seen[u] = true
	}
	a, err := o.authenticator()
	if err != nil {
		return fmt.Errorf("token gen: %w", err)
	}

	toks := make([]generatedToken, 0, len(users))
	for _, u := range users {
		tok, exp, err := a.Generate(u, ttl)
		if err != nil {
			return fmt.Errorf("token gen: %w", err)
		}
		toks = append(toks, generatedToken{UserID: u, Token: tok, Expiry: exp})
	}

	if o.output == "" {
		return writeTokens(cmd.OutOrStdout(), format, toks)
	}
	var buf bytes.Buffer
	if err := writeTokens(&buf, format, toks); err != nil {
		return fmt.Errorf("token gen: %w", err)
	}
	// Tokens are credentials: not readable by other users.
	if err := os.WriteFile(o.output, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("token gen: writing tokens: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d token(s) to %s (%s)\n", len(toks), o.output, format)
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

func newTokenVerifyCmd() *cobra.Command {
	f := &tokenAuthFlags{}
	cmd := &cobra.Command{
		Use:   "verify TOKEN",
		Short: "Check a token as the engine would and print its user id",
		Example: `  electric token verify eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9…
  electric token verify "$TOKEN" --key "$KEY" --issuer my.electric.server`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := f.authenticator()
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			user, err := a.Validate(strings.TrimSpace(args[0]))
			if err != nil {
				return fmt.Errorf("token verify: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "valid access token for user id %s\n", user)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
