package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uvs-project/uvs/lab"
)

// bin holds uvsd and uvsadm, built once for the whole package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uvs-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	out, err := exec.Command("go", "build", "-o", dir+"/", "github.com/uvs-project/uvs/cmd/uvsd", "github.com/uvs-project/uvs/cmd/uvsadm", "github.com/uvs-project/uvs/cmd/uvsrs").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building uvsd and uvsadm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// director is a running uvsd in a lab namespace.
type director struct {
	t    *testing.T
	sock string
	proc *lab.Proc
}

// startUVSD writes conf into a fresh folder, starts uvsd in ns and waits
// until its control socket answers.
func startUVSD(t *testing.T, l *lab.Lab, ns *lab.NS, conf string, args ...string) *director {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &director{t: t, sock: filepath.Join(dir, "uvsd.sock")}
	p, err := ns.Start(filepath.Join(bin, "uvsd"), append([]string{"-f", cfg, "--control", d.sock}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	d.proc = p
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := lab.Eventually(ctx, 20*time.Millisecond, func() error { _, err := d.adm("-L", "-n"); return err }); err != nil {
		t.Fatalf("uvsd did not come up: %v\n%s", err, p.Output())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("uvsd output:\n%s", p.Output())
		}
	})
	return d
}

func (d *director) adm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "uvsadm"), append([]string{"--control", d.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("uvsadm %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (d *director) mustAdm(args ...string) string {
	d.t.Helper()
	out, err := d.adm(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// reload writes conf over the director's keepalived.conf and runs `uvsd
// reload`, returning its output.
func (d *director) reload(conf string) (string, error) {
	d.t.Helper()
	cfg := filepath.Join(filepath.Dir(d.sock), "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "uvsd"), "reload", "--control", d.sock).CombinedOutput()
	return string(out), err
}

// restore runs `uvsadm -R` with in on its standard input.
func (d *director) restore(in string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "uvsadm"), "--control", d.sock, "-R")
	cmd.Stdin = strings.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("uvsadm -R: %v: %s\ninput:\n%s", err, out, in)
	}
}
