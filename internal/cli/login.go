package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/imgsign/imgsign/pkg/oci"
	"github.com/spf13/cobra"
)

func (a *App) newLoginCommand() *cobra.Command {
	var (
		username, password string
		passwordStdin      bool
		reg                registryFlags
	)
	cmd := &cobra.Command{
		Use:   "login REGISTRY -u USER --password-stdin",
		Short: "Check registry credentials and store them in the Docker config file",
		Long: `Log in to REGISTRY: the credentials are checked against the registry first,
then stored in $DOCKER_CONFIG/config.json (default ~/.docker/config.json),
the file imgsign, cosign and Docker read. Prefer --password-stdin: a
password on the command line shows in process lists and shell history.`,
		Example: `  echo "$REGISTRY_TOKEN" | imgsign login registry.example.com -u ci-bot --password-stdin`,
		Args:    exactArgs(1, "one registry"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if username == "" {
				return usageError{fmt.Errorf("--username is required")}
			}
			if passwordStdin == (password != "") {
				return usageError{fmt.Errorf("give exactly one of --password and --password-stdin")}
			}
			if passwordStdin {
				data, err := io.ReadAll(io.LimitReader(a.Stdin, maxPasswordFileSize+1))
				if err != nil {
					return err
				}
				password = string(bytes.TrimRight(data, "\r\n"))
			}
			client, ctx, cancel, err := reg.client(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer cancel()
			if err := client.CheckLogin(ctx, args[0], username, password); err != nil {
				if errors.Is(err, oci.ErrUnauthorized) {
					return exitError{code: ExitKey, err: err}
				}
				return err
			}
			dir, err := oci.DockerConfigDir()
			if err != nil {
				return err
			}
			warning, err := oci.SaveCredentials(dir, args[0], username, password)
			if err != nil {
				return err
			}
			if warning != "" {
				fmt.Fprintln(a.Stderr, "Warning:", warning)
			}
			fmt.Fprintf(a.Stderr, "Login succeeded; credentials stored in %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "user name (required)")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	reg.registerConnection(cmd)
	return cmd
}
