package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"

	"github.com/portico-gw/portico/internal/envoytest"
)

var update = flag.Bool("update", false, "rewrite testdata/bootstrap.yaml from the current output")

// goldenOptions are fixed, so the golden file changes only when Build or Marshal does.
var goldenOptions = Options{
	NodeID:          "portico",
	Cluster:         "portico",
	XDSSocket:       "/run/portico/xds.sock",
	RateLimitSocket: "/run/portico/ratelimit.sock",
	AuthzSocket:     "/run/portico/authz.sock",
}

func TestMarshalGolden(t *testing.T) {
	b, err := Build(goldenOptions)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	got, err := Marshal(b)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	golden := filepath.Join("testdata", "bootstrap.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal output differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}

	// protojson varies its whitespace on purpose; Marshal must not pass that through.
	for range 20 {
		again, err := Marshal(b)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if !bytes.Equal(again, got) {
			t.Fatalf("Marshal is not stable:\nfirst:\n%s\nlater:\n%s", got, again)
		}
	}
}

// TestMarshalRoundTrip proves that dropping JSON's quoting never changes meaning: node names
// that YAML would otherwise read as a number, boolean or null read back as the same strings.
func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"portico", "1.40", "true", "null", "0x1F", "yes: no", "- a"} {
		t.Run(name, func(t *testing.T) {
			opts := goldenOptions
			opts.NodeID, opts.Cluster = name, name
			b, err := Build(opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			out, err := Marshal(b)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var tree any
			if err := yaml.Unmarshal(out, &tree); err != nil {
				t.Fatalf("output is not YAML: %v\n%s", err, out)
			}
			js, err := json.Marshal(tree)
			if err != nil {
				t.Fatal(err)
			}
			var back bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(js, &back); err != nil {
				t.Fatalf("output does not decode as a bootstrap: %v\n%s", err, out)
			}
			if !proto.Equal(&back, b) {
				t.Errorf("bootstrap changed through Marshal:\n%s", out)
			}
		})
	}
}

func TestBuildAdminAddress(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"default", "", "127.0.0.1"},
		{"ipv4", "127.0.0.1", "127.0.0.1"},
		{"ipv4 other loopback", "127.0.0.2", "127.0.0.2"},
		{"ipv6", "::1", "::1"},
		{"ipv4 mapped in ipv6", "::ffff:127.0.0.1", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := goldenOptions
			opts.AdminAddress = tc.in
			b, err := Build(opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			sa := b.GetAdmin().GetAddress().GetSocketAddress()
			if sa.GetAddress() != tc.want || sa.GetPortValue() != 0 {
				t.Errorf("admin address = %s:%d, want %s:0", sa.GetAddress(), sa.GetPortValue(), tc.want)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Options)
		want   []string // every fragment must appear in the error
	}{
		{"empty node id", func(o *Options) { o.NodeID = "" }, []string{"node id is empty"}},
		{"empty cluster", func(o *Options) { o.Cluster = "" }, []string{"node cluster is empty"}},
		{"empty socket", func(o *Options) { o.XDSSocket = "" }, []string{"xDS socket path is empty"}},
		{"relative socket", func(o *Options) { o.XDSSocket = "run/xds.sock" }, []string{`"run/xds.sock" is not absolute`}},
		{"long socket", func(o *Options) { o.XDSSocket = "/" + strings.Repeat("s", 99) }, []string{"is 100 bytes", "under 100 bytes"}},
		{"relative rate limit socket", func(o *Options) { o.RateLimitSocket = "run/rl.sock" }, []string{`rate limit socket path "run/rl.sock" is not absolute`}},
		{"long rate limit socket", func(o *Options) { o.RateLimitSocket = "/" + strings.Repeat("r", 99) }, []string{"rate limit socket path", "is 100 bytes"}},
		{"relative authz socket", func(o *Options) { o.AuthzSocket = "run/authz.sock" }, []string{`authz socket path "run/authz.sock" is not absolute`}},
		{"unspecified ipv4 admin", func(o *Options) { o.AdminAddress = "0.0.0.0" }, []string{"0.0.0.0 listens on every interface"}},
		{"unspecified ipv6 admin", func(o *Options) { o.AdminAddress = "::" }, []string{":: listens on every interface"}},
		{"public admin", func(o *Options) { o.AdminAddress = "192.0.2.1" }, []string{"192.0.2.1 is not a loopback address"}},
		{"hostname admin", func(o *Options) { o.AdminAddress = "localhost" }, []string{`"localhost" is not an IP address`}},
		{"every problem at once", func(o *Options) { *o = Options{AdminAddress: "0.0.0.0"} }, []string{
			"node id is empty", "node cluster is empty", "xDS socket path is empty", "listens on every interface",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := goldenOptions
			tc.modify(&opts)
			b, err := Build(opts)
			if err == nil {
				t.Fatalf("Build succeeded, want an error; bootstrap: %v", b)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The longest accepted path is one byte under the limit.
	opts := goldenOptions
	opts.XDSSocket = "/" + strings.Repeat("s", 98)
	if _, err := Build(opts); err != nil {
		t.Errorf("Build rejected a %d-byte socket path: %v", len(opts.XDSSocket), err)
	}
}

func TestWrite(t *testing.T) {
	b, err := Build(goldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(path, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, b); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("written file differs from Marshal output:\n%s", got)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %o, want 600", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only envoy.yaml (a temporary file was left behind)", len(entries))
	}

	if err := Write(filepath.Join(dir, "missing", "envoy.yaml"), b); err == nil {
		t.Error("Write into a missing directory succeeded, want an error")
	}
}

// TestEnvoyValidates proves Envoy itself accepts what Build produces, and that this check can
// fail: a bootstrap broken after Build is rejected by the same Envoy run.
func TestEnvoyValidates(t *testing.T) {
	envoy := envoytest.Binary(t)

	validate := func(t *testing.T, path string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, envoy, "--mode", "validate", "--concurrency", "1", "-c", path).CombinedOutput()
		return string(out), err
	}

	t.Run("built bootstrap", func(t *testing.T) {
		for _, admin := range []string{"", "::1"} {
			opts := goldenOptions
			opts.AdminAddress = admin
			b, err := Build(opts)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			if err := Write(path, b); err != nil {
				t.Fatal(err)
			}
			if out, err := validate(t, path); err != nil {
				t.Errorf("envoy --mode validate with admin %q: %v\n%s", admin, err, out)
			}
		}
	})

	t.Run("broken bootstrap", func(t *testing.T) {
		b, err := Build(goldenOptions)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		b.DynamicResources.AdsConfig.GrpcServices[0].GetEnvoyGrpc().ClusterName = "no_such_cluster"
		path := filepath.Join(t.TempDir(), "envoy.yaml")
		if err := Write(path, b); err != nil {
			t.Fatal(err)
		}
		out, err := validate(t, path)
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("envoy --mode validate accepted an ADS config naming a missing cluster (err %v)\n%s", err, out)
		}
		if !strings.Contains(out, "no_such_cluster") {
			t.Errorf("envoy's rejection does not name the missing cluster:\n%s", out)
		}
	})

	t.Run("options Build rejects", func(t *testing.T) {
		opts := goldenOptions
		opts.AdminAddress = "0.0.0.0"
		if b, err := Build(opts); err == nil {
			t.Fatalf("Build accepted admin address 0.0.0.0: %v", b)
		}
	})
}
