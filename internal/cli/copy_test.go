package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The progress line redraws in place, skips errors and empty totals, and
// is cleared at the end; nothing is drawn when nothing was copied.
func TestShowProgress(t *testing.T) {
	var buf bytes.Buffer
	updates, done := make(chan v1.Update, 4), make(chan struct{})
	go showProgress(&buf, updates, done)
	updates <- v1.Update{Complete: 512, Total: 2048}
	updates <- v1.Update{Error: errors.New("x"), Complete: 1, Total: 2}
	updates <- v1.Update{Complete: 0, Total: 0}
	updates <- v1.Update{Complete: 3 << 20, Total: 3 << 20}
	close(updates)
	<-done
	want := "\rCopying: 512 B of 2.0 KiB (25%)   \rCopying: 3.0 MiB of 3.0 MiB (100%)   \r\033[K"
	if buf.String() != want {
		t.Fatalf("progress output %q, want %q", buf.String(), want)
	}

	buf.Reset()
	updates, done = make(chan v1.Update), make(chan struct{})
	go showProgress(&buf, updates, done)
	close(updates)
	<-done
	if buf.Len() != 0 {
		t.Fatalf("nothing copied, yet %q was drawn", buf.String())
	}
	if s := size(5 << 30); !strings.HasPrefix(s, "5.0 GiB") {
		t.Fatalf("size(5 GiB) = %q", s)
	}
}
