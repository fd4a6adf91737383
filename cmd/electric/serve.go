package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/auth"
	"github.com/electric-sql/electric-go/engine/config"
)

// runEngineFunc is what serve starts once the configuration is valid.
type runEngineFunc func(ctx context.Context, cfg config.Config, log *slog.Logger) error

func newServeCmd() *cobra.Command { return newServeCmdWith(engine.Run) }

// newServeCmdWith is serve with the engine as a parameter, so the CLI wiring
// (flags, environment, signals, exit statuses) is tested apart from the engine.
func newServeCmdWith(runEngine runEngineFunc) *cobra.Command {
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the replication engine in the foreground",
		Long: `Run the replication engine in the foreground until interrupted (SIGINT/SIGTERM).

It is configured by the seed's environment variables; each also has a flag, and
a flag beats the variable. VAXINE_* variables are accepted and ignored with a
warning (this electric has no Vaxine). An invalid configuration is reported one
problem per line, with exit status 2.`,
		Example: `  CONNECTORS='a=postgresql://electric:password@localhost:54321/electric;b=postgresql://electric:password@localhost:54322/electric' \
    ELECTRIC_HOST=localhost electric serve
  electric serve --connectors 'a=postgresql://electric:password@localhost:54321/electric' --electric-host localhost
  electric serve --print-config            # effective configuration, secrets masked
  electric serve --log-level debug --websocket-port 6133`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, printConfig, runEngine)
		},
	}
	for _, v := range config.Variables() {
		if v.Flag == "" {
			continue
		}
		usage := v.Usage + " (env " + v.Name + ")"
		def := v.Default
		if v.Secret {
			def = "" // keep the help free of anything secret-looking
		}
		cmd.Flags().String(v.Flag, def, usage)
	}
	cmd.Flags().BoolVar(&printConfig, "print-config", false, "print the effective configuration (secrets masked) and exit")
	cmd.Flags().SortFlags = false
	return cmd
}

// serveLookup reads a variable from its flag when the flag was given, else
// from the process environment.
func serveLookup(cmd *cobra.Command) func(string) (string, bool) {
	flags := map[string]string{}
	for _, v := range config.Variables() {
		if v.Flag != "" {
			flags[v.Name] = v.Flag
		}
	}
	return func(name string) (string, bool) {
		if f, ok := flags[name]; ok && cmd.Flags().Changed(f) {
			val, err := cmd.Flags().GetString(f)
			return val, err == nil
		}
		return os.LookupEnv(name)
	}
}

func runServe(cmd *cobra.Command, printConfig bool, runEngine runEngineFunc) error {
	stderr := cmd.ErrOrStderr()
	cfg, errs := config.Load(serveLookup(cmd))
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(stderr, "electric: invalid configuration:", err)
		}
		return exitError{code: 2}
	}
	if printConfig {
		for _, w := range cfg.Warnings {
			fmt.Fprintln(stderr, "electric: warning:", w)
		}
		return cfg.WriteEnv(cmd.OutOrStdout())
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	a, err := auth.New(auth.Options{SigningKey: cfg.SigningKey, Issuer: cfg.SigningIssuer})
	if err != nil {
		fmt.Fprintln(stderr, "electric: invalid configuration:", err)
		return exitError{code: 2}
	}
	if a.Insecure() {
		log.Warn("INSECURE AUTHENTICATION: every Satellite token is accepted as its user id; set " +
			config.EnvSigningKey + " and " + config.EnvSigningIssuer + " before exposing this engine")
	}
	if !cfg.TLS() {
		log.Warn(fmt.Sprintf("PLAIN TRAFFIC: no TLS on the websocket (%d), status (%d) and replication (%d) ports; set %s and %s to serve wss and https",
			cfg.WebsocketPort, cfg.StatusPort, cfg.ReplicationPort, config.EnvTLSCertFile, config.EnvTLSKeyFile))
	}
	listen, _ := cfg.ListenHost()
	if listen == "" {
		listen = "all interfaces"
	}
	names := make([]string, len(cfg.Connectors))
	for i, c := range cfg.Connectors {
		names[i] = c.Name
	}
	log.Info("starting electric",
		"version", versionString(),
		"connectors", strings.Join(names, ","),
		"websocket_port", cfg.WebsocketPort,
		"status_port", cfg.StatusPort,
		"replication_port", cfg.ReplicationPort,
		"listen_address", listen,
		"tls", cfg.TLS(),
		"data_dir", cfg.DataDir(),
		"auth", a.Mode().String(),
		"regional_id", cfg.RegionalID,
		"instance_id", cfg.InstanceID)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, restore the default handling so a second
		// one kills a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	err = runEngine(ctx, cfg, log)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("stopped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
