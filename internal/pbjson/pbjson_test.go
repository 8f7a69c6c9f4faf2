package pbjson

import (
	"bytes"
	"testing"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
)

func TestMarshalCompactAndStable(t *testing.T) {
	m := &protocommon.LogId{KeyId: []byte{1, 2, 3}}
	a, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != `{"keyId":"AQID"}` {
		t.Fatalf("got %s", a)
	}
	for range 20 {
		if b, _ := Marshal(m); !bytes.Equal(a, b) {
			t.Fatalf("unstable output: %s vs %s", a, b)
		}
	}
}
