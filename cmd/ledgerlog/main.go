// Command ledgerlog is the single Ledgerlog binary: `ledgerlog server` runs
// the Loki-compatible log store, `ledgerlog agent` the Promtail-compatible
// shipper.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ledgerlog/ledgerlog/internal/app"
)

const usage = `Usage: ledgerlog <command> [flags]

Commands:
  server   run the log store (Loki-compatible HTTP API on 127.0.0.1:3100)
  agent    run the log shipper (Promtail-compatible configuration)
  query    query Ledgerlog or Loki from the command line (logcli-like)
  demo     generate a FinTech workload: logs, metrics with exemplars, alert scenarios

Run 'ledgerlog <command> -h' for the command's flags.
With no command, 'server' runs with its defaults.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "ledgerlog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "server"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "server":
		return app.RunServer(ctx, args, stdout, stderr)
	case "agent":
		return app.RunAgent(ctx, args, stdout, stderr)
	case "query":
		return app.RunQuery(ctx, args, stdout, stderr)
	case "demo":
		return app.RunDemo(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}
