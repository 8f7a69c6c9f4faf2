package dockerfile

import (
	"strings"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":        "linux/amd64",
		"Linux/X86_64":       "linux/amd64",
		"linux/amd64/v1":     "linux/amd64",
		"linux/amd64/v3":     "linux/amd64/v3",
		"linux/aarch64":      "linux/arm64",
		"linux/arm64/v8":     "linux/arm64",
		"linux/arm":          "linux/arm/v7",
		"linux/arm/6":        "linux/arm/v6",
		"linux/armhf":        "linux/arm/v7",
		"linux/armel":        "linux/arm/v6",
		"linux/i386":         "linux/386",
		"macos/arm64":        "darwin/arm64",
		"windows/amd64":      "windows/amd64",
		"linux/riscv64":      "linux/riscv64",
		"linux/ppc64le":      "linux/ppc64le",
		"linux/s390x":        "linux/s390x",
		"freebsd/amd64":      "freebsd/amd64",
		"linux/arm64/v9":     "linux/arm64/v9",
		"linux/arm/v5":       "linux/arm/v5",
		"linux/mips64le/xyz": "linux/mips64le/xyz",
	} {
		p, err := ParsePlatform(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePlatform(%q) = %q, %v; want %q", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "linux/amd64/v1/x", "linux/amd 64", "linux/$ARCH"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) accepted", bad)
		}
	}
	if h := HostPlatform(); h.OS == "" || h.Architecture == "" {
		t.Errorf("HostPlatform() = %+v", h)
	}
}

// FROM lines resolve with the automatic platform arguments a build sets
// without any ARG, for each target platform; unknown, they are refused,
// never replaced by a default.
func TestAutomaticPlatformArgs(t *testing.T) {
	p := func(s string) *Platform {
		pl, err := ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return &pl
	}
	amd64, arm7, arm64 := p("linux/amd64"), p("linux/arm/v7"), p("linux/arm64")
	for _, tc := range []struct {
		name, file string
		b          Build
		want       string // the FROM reference, or the error text after "!"
	}{
		{"default not taken", "FROM reg/app:${TARGETARCH:-v1}\n", Build{Target: amd64, Host: amd64}, "reg/app:amd64"},
		{"other platform", "FROM reg/app:${TARGETARCH:-v1}\n", Build{Target: arm64, Host: amd64}, "reg/app:arm64"},
		{"unknown platform", "FROM reg/app:${TARGETARCH:-v1}\n", Build{}, "!TARGETARCH is set by the build from its target platform, which is not given"},
		{"unknown platform, + test", "FROM reg/app${TARGETARCH:+-x}\n", Build{}, "!TARGETARCH is set by the build"},
		{"given as a build argument", "FROM reg/app:${TARGETARCH:-v1}\n", Build{Args: map[string]string{"TARGETARCH": "riscv64"}}, "reg/app:riscv64"},
		{"build argument beats the platform", "FROM reg/app:${TARGETARCH}\n", Build{Target: amd64, Args: map[string]string{"TARGETARCH": "riscv64"}}, "reg/app:riscv64"},
		{"target platform", "FROM reg/${TARGETPLATFORM}:1\n", Build{Target: arm7, Host: amd64}, "reg/linux/arm/v7:1"},
		{"build platform as a whole", "FROM reg/${BUILDPLATFORM}:1\n", Build{Target: arm7, Host: arm64}, "reg/linux/arm64:1"},
		{"os and variant", "FROM reg/${TARGETOS}-${TARGETARCH}-${TARGETVARIANT}:1\n", Build{Target: arm7, Host: amd64}, "reg/linux-arm-v7:1"},
		{"empty variant is set", "FROM reg/app:x${TARGETVARIANT-unset}\n", Build{Target: amd64, Host: amd64}, "reg/app:x"},
		{"empty variant is null", "FROM reg/app:x${TARGETVARIANT:-none}\n", Build{Target: amd64, Host: amd64}, "reg/app:xnone"},
		{"os version is empty", "FROM reg/app:x${TARGETOSVERSION}${BUILDOSVERSION}\n", Build{Target: amd64, Host: amd64}, "reg/app:x"},
		{"build platform", "FROM reg/${BUILDOS}/${BUILDARCH}:1\n", Build{Target: arm64, Host: amd64}, "reg/linux/amd64:1"},
		{"build platform unknown", "FROM reg/${BUILDARCH}:1\n", Build{Target: arm64}, "!BUILDARCH is set by the build from its build platform"},
		{"ARG without default keeps it", "ARG TARGETARCH\nFROM reg/app:${TARGETARCH}\n", Build{Target: arm64, Host: amd64}, "reg/app:arm64"},
		{"ARG default overrides it", "ARG TARGETARCH=fixed\nFROM reg/app:${TARGETARCH}\n", Build{Target: arm64, Host: amd64}, "reg/app:fixed"},
		{"build argument overrides the ARG default", "ARG TARGETARCH=fixed\nFROM reg/app:${TARGETARCH}\n", Build{Target: arm64, Args: map[string]string{"TARGETARCH": "s390x"}}, "reg/app:s390x"},
		{"ARG default from it", "ARG TAG=${TARGETARCH}-1\nFROM reg/app:${TAG}\n", Build{Target: arm64, Host: amd64}, "reg/app:arm64-1"},
		{"ARG default from it, unknown", "ARG TAG=${TARGETARCH:-x}-1\nFROM reg/app:${TAG}\n", Build{}, "!TARGETARCH is set by the build"},
		{"target stage unknown", "FROM reg/app:${TARGETSTAGE:-x}\n", Build{Target: amd64, Host: amd64}, "!TARGETSTAGE"},
		{"target stage given", "FROM reg/app:${TARGETSTAGE}\n", Build{Args: map[string]string{"TARGETSTAGE": "final"}}, "reg/app:final"},
		{"an ordinary unset variable tests unset", "FROM reg/app:${OTHER:-v1}\n", Build{Target: amd64, Host: amd64}, "reg/app:v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			images, err := ImagesFor([]byte(tc.file), tc.b)
			if msg, bad := strings.CutPrefix(tc.want, "!"); bad {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("got %v, %v; want an error mentioning %q", images, err, msg)
				}
				return
			}
			if err != nil || len(images) != 1 || images[0].Ref != tc.want {
				t.Fatalf("got %+v, %v; want %s", images, err, tc.want)
			}
		})
	}
	// Images and BaseImages know no platform.
	if _, err := Images([]byte("FROM reg/app:${TARGETARCH:-v1}\n"), nil); err == nil || !strings.Contains(err.Error(), "not given") {
		t.Fatalf("Images with no platform: %v", err)
	}
	if _, err := BaseImages([]byte("FROM reg/app:${BUILDARCH:-v1}\n"), nil); err == nil || !strings.Contains(err.Error(), "not given") {
		t.Fatalf("BaseImages with no platform: %v", err)
	}
}
