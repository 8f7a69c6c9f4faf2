// Package pbjson encodes protobuf messages as the Sigstore formats carry
// them: protojson, compacted. protojson varies its whitespace on purpose;
// compacting makes the output stable.
package pbjson

import (
	"bytes"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Marshal returns the compact protojson encoding of m.
func Marshal(m proto.Message) ([]byte, error) {
	out, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
