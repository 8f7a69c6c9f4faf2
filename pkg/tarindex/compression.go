package tarindex

import (
	"bytes"
	"encoding/binary"
)

// A Compressor is a compression format a loader recognises by its first
// bytes and decompresses before reading the tar inside.
type Compressor struct {
	// Name names the format; Advice is the command that decompresses it.
	Name, Advice string
	magic        func(head []byte) bool
}

// Compressors are the formats that docker load (moby's archive package,
// containerd's importer) and podman load (containers/image) sniff and
// decompress: gzip, bzip2, xz and zstd, a zstd stream starting with a
// skippable frame (magic 0x184D2A50 to 0x184D2A5F) included; lz4 and zip,
// which other importers accept, are refused as well. Only the first bytes
// are looked at, as those loaders do. HeadBytes is the most any needs.
var Compressors = []Compressor{
	{"gzip", "gunzip", prefix(0x1f, 0x8b)},
	{"bzip2", "bunzip2", prefix('B', 'Z', 'h')},
	{"xz", "unxz", prefix(0xfd, '7', 'z', 'X', 'Z', 0x00)},
	{"zstd", "unzstd", func(h []byte) bool {
		if bytes.HasPrefix(h, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
			return true
		}
		// A skippable frame: any zstd reader skips it and reads on.
		return len(h) >= 4 && binary.LittleEndian.Uint32(h)&0xfffffff0 == 0x184d2a50
	}},
	{"lz4", "unlz4", prefix(0x04, 0x22, 0x4d, 0x18)},
	{"zip", "unzip", prefix('P', 'K', 0x03, 0x04)},
}

// HeadBytes is how many leading bytes Compression needs.
const HeadBytes = 8

// Compression returns the compression format whose magic number head
// (the first HeadBytes bytes of a file, or all of a shorter one) starts
// with, or nil for none.
func Compression(head []byte) *Compressor {
	for i := range Compressors {
		if Compressors[i].magic(head) {
			return &Compressors[i]
		}
	}
	return nil
}

func prefix(magic ...byte) func([]byte) bool {
	return func(h []byte) bool { return bytes.HasPrefix(h, magic) }
}
