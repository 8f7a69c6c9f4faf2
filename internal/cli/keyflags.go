package cli

import (
	"fmt"

	"github.com/imgsign/imgsign/pkg/verify"
	"github.com/spf13/cobra"
)

// keyFlags say which signatures verify an image without a policy: the
// trusted keys, how many of them must have signed, and what the signed
// payload must carry. verify and dockerfile verify|pin share them (with
// logFlags' registerVerify for the logs), so every entry point checks the
// same way.
type keyFlags struct {
	paths         []string
	threshold     int
	annotations   []string
	checkIdentity bool
}

func (f *keyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.paths, "key", nil, "trusted public key file (repeatable: any key may match)")
	fl.IntVar(&f.threshold, "threshold", 1, "number of distinct keys that must have signed")
	fl.StringArrayVarP(&f.annotations, "annotation", "a", nil, "key=value the signed payload must carry (repeatable)")
	fl.BoolVar(&f.checkIdentity, "check-identity", false, "require the signed docker-reference to name the repository verified")
}

// given reports whether any of them was set (a policy says all of it).
func (f *keyFlags) given() bool {
	return len(f.paths) > 0 || len(f.annotations) > 0 || f.threshold != 1 || f.checkIdentity
}

// options checks the flags and returns the verify options they set.
func (f *keyFlags) options() (verify.Options, error) {
	if len(f.paths) == 0 {
		return verify.Options{}, usageError{fmt.Errorf("--key or --policy is required")}
	}
	if f.threshold < 1 || f.threshold > len(f.paths) {
		return verify.Options{}, usageError{fmt.Errorf("--threshold must be between 1 and the number of keys (%d)", len(f.paths))}
	}
	ann, err := parseAnnotations(f.annotations)
	if err != nil {
		return verify.Options{}, err
	}
	return verify.Options{Annotations: ann, Threshold: f.threshold, CheckIdentity: f.checkIdentity}, nil
}
