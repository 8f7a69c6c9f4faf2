package verify

import (
	"bytes"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// The PAE checked in parts is the library's PAE.
func TestPAEHeader(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("{}"), bytes.Repeat([]byte("x"), 1000)} {
		got := append(paeHeader("application/vnd.in-toto+json", payload), payload...)
		if want := dsse.PAE("application/vnd.in-toto+json", payload); !bytes.Equal(got, want) {
			t.Fatalf("PAE %q, want %q", got, want)
		}
	}
}
