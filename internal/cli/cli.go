// Package cli defines imgsign's commands. Each command is thin: it reads
// flags, makes one call into a library package (pkg/keys, pkg/sign,
// pkg/verify, ...), and prints the result. Nothing about keys, registries or
// signatures is decided here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// App holds what commands read from and write to, so that tests can run
// the whole CLI in-process.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// LookupEnv reads an environment variable.
	LookupEnv func(string) (string, bool)
	// ReadPassword asks for a password without echo; nil when there is no
	// terminal to ask on.
	ReadPassword func(prompt string) ([]byte, error)
}

// DefaultApp returns an App on the process's standard streams and
// environment, with a password prompt when standard input is a terminal.
func DefaultApp() *App {
	app := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, LookupEnv: os.LookupEnv}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		app.ReadPassword = func(prompt string) ([]byte, error) {
			fmt.Fprint(os.Stderr, prompt)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(fd)
		}
	}
	return app
}

// Run executes imgsign with args (without the program name) and returns the
// process exit code. Errors are printed as one line on stderr.
func (a *App) Run(ctx context.Context, args []string) int {
	root := a.newRootCommand()
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		err = usageError{err}
	}
	if e := (exitError{}); errors.As(err, &e) && e.reported {
		return e.code // the command has already explained the failure
	}
	fmt.Fprintf(a.Stderr, "Error: %s\n", oneLine(err.Error()))
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintf(a.Stderr, "Run '%s --help' for usage.\n", commandPath(root, args))
	}
	return exitCode(err)
}

func (a *App) newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "imgsign",
		Short: "Sign container images and verify them before they are deployed",
		Long: `imgsign signs container images and verifies them before deploy, with no
Docker daemon. Signatures are stored next to the image in its OCI registry,
in the formats cosign reads and writes, so imgsign and cosign (and the
admission controllers built on it) verify each other's signatures.

Start with a key pair:

  imgsign generate-key-pair          # writes imgsign.key and imgsign.pub

Passwords come from --password-file, then IMGSIGN_PASSWORD (or
COSIGN_PASSWORD), then a prompt on the terminal.

` + exitCodeHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(
		a.newGenerateKeyPairCommand(),
		a.newImportKeyPairCommand(),
		a.newPublicKeyCommand(),
		a.newKeyCommand(),
		a.newPKCS11Command(),
		a.newSignCommand(),
		a.newVerifyCommand(),
		a.newTrustedRootCommand(),
		a.newTrustCommand(),
		a.newAttachCommand(),
		a.newPolicyCommand(),
		a.newAdmissionCommand(),
		a.newDockerfileCommand(),
		a.newCopyCommand(),
		a.newSaveCommand(),
		a.newLoadCommand(),
		a.newSignBlobCommand(),
		a.newVerifyBlobCommand(),
		a.newAttestCommand(),
		a.newVerifyAttestationCommand(),
		a.newTreeCommand(),
		a.newDiffCommand(),
		a.newCleanCommand(),
		a.newLoginCommand(),
		a.newVersionCommand(),
	)
	return root
}

// exactArgs is cobra.ExactArgs with a usage error, so a wrong argument count
// exits with ExitUsage.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("expected %s, got %d argument(s)", what, len(args))}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a usage error.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{fmt.Errorf("expected %s, got %d argument(s)", what, len(args))}
		}
		return nil
	}
}

// commandPath names the (sub)command args select, for the usage hint.
func commandPath(root *cobra.Command, args []string) string {
	if c, _, err := root.Find(args); err == nil {
		return c.CommandPath()
	}
	return root.Name()
}

// oneLine folds an error message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
