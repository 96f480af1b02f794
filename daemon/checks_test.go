package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uvs-project/uvs/config"
	"github.com/uvs-project/uvs/service"
)

// checkLab is a daemon without a dataplane: its model, its health checks
// and a keepalived.conf whose real servers are MISC_CHECKs of flag files,
// so that a test decides who is healthy.
type checkLab struct {
	t      *testing.T
	d      *Daemon
	dir    string
	cancel context.CancelFunc
}

func newCheckLab(t *testing.T) *checkLab {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{
		opts:    Options{ConfigFile: filepath.Join(dir, "keepalived.conf")},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		model:   service.NewModel(),
		resolve: make(chan struct{}, 1),
		ctx:     ctx,
	}
	l := &checkLab{t: t, d: d, dir: dir, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		d.stopChecks()
	})
	return l
}

// conf expands DIR in s to the lab's folder.
func (l *checkLab) conf(s string) string { return strings.ReplaceAll(s, "DIR", l.dir) }

// start writes conf and starts the daemon's model and checks from it.
func (l *checkLab) start(conf string) {
	l.t.Helper()
	l.write(conf)
	cfg, err := config.ParseFile(l.d.opts.ConfigFile)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, w := range cfg.Warnings {
		l.t.Fatalf("config warning: %v", w)
	}
	if err := Apply(cfg, l.d.model); err != nil {
		l.t.Fatal(err)
	}
	if err := l.d.restartChecks(cfg); err != nil {
		l.t.Fatal(err)
	}
}

func (l *checkLab) write(conf string) {
	l.t.Helper()
	if err := os.WriteFile(l.d.opts.ConfigFile, []byte(l.conf(conf)), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// healthy makes real server name's MISC_CHECK pass or fail.
func (l *checkLab) healthy(name string, ok bool) {
	l.t.Helper()
	p := filepath.Join(l.dir, name+".ok")
	var err error
	if ok {
		err = os.WriteFile(p, nil, 0o644)
	} else {
		err = os.Remove(p)
	}
	if err != nil && !os.IsNotExist(err) {
		l.t.Fatal(err)
	}
}

// ran reports whether the script that touches DIR/name has run.
func (l *checkLab) ran(name string) bool {
	_, err := os.Stat(filepath.Join(l.dir, name))
	return err == nil
}

// pool is the model's pool of the service on port: "addr:port" → weight.
func pool(m *service.Model, port uint16) map[string]int32 {
	out := map[string]int32{}
	for _, s := range m.Snapshot().Services {
		if s.Cfg.Key.Port != port {
			continue
		}
		for _, dd := range s.Dests {
			out[fmt.Sprintf("%v:%d", dd.Addr, dd.Port)] = dd.Weight
		}
	}
	return out
}

func (l *checkLab) pool(port uint16) map[string]int32 { return pool(l.d.model, port) }

// eventually polls cond until it holds, for at most 10 s.
func (l *checkLab) eventually(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			l.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holds polls cond for d and reports whether it held throughout: for
// what must not happen, where there is no event to wait for.
func (l *checkLab) holds(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if !cond() {
			return false
		}
	}
	return true
}

// misc is a real server checked by a MISC_CHECK of DIR/name.ok, with
// notify scripts touching DIR/name.up and DIR/name.down.
func misc(addr, name, extra string) string {
	return fmt.Sprintf(`    real_server %s 80 {
        weight 1
        notify_up "touch DIR/%[2]s.up"
        notify_down "touch DIR/%[2]s.down"
%[3]s        MISC_CHECK {
            misc_path "test -e DIR/%[2]s.ok"
            misc_timeout 2
            delay_loop 0.05
            retry 1
            delay_before_retry 0.02
        }
    }
`, addr, name, extra)
}

func vsConf(port int, opts string, servers ...string) string {
	return fmt.Sprintf("virtual_server 10.9.0.1 %d {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n%s%s}\n",
		port, opts, strings.Join(servers, ""))
}

// watchPool reports, once stopped, whether addr was ever in the pool of
// the service on port while it ran: it reads every snapshot it can.
func watchPool(m *service.Model, port uint16, addr string) (stop func() bool) {
	var done atomic.Bool
	seen := make(chan bool, 1)
	go func() {
		saw := false
		for !done.Load() {
			if _, ok := pool(m, port)[addr]; ok {
				saw = true
			}
		}
		seen <- saw
	}()
	return func() bool { done.Store(true); return <-seen }
}

// TestReloadKeepsHealth: a real server its checks took out stays out
// across a reload of the same configuration (not even for a moment back
// in the pool), its checks go on from its state, notify_up runs when it
// comes back, and an inhibited one keeps weight 0.
func TestReloadKeepsHealth(t *testing.T) {
	l := newCheckLab(t)
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		l.healthy(n, true)
	}
	conf := vsConf(80, "",
		misc("10.9.1.1", "rs1", ""),
		misc("10.9.1.2", "rs2", ""),
		misc("10.9.1.3", "rs3", "        inhibit_on_failure\n"))
	l.start(conf)
	if got := l.pool(80); len(got) != 3 {
		t.Fatalf("pool at start %v", got)
	}
	l.healthy("rs1", false)
	l.healthy("rs3", false)
	l.eventually("rs1 out, rs3 at weight 0", func() bool {
		p := l.pool(80)
		_, in := p["10.9.1.1:80"]
		w, in3 := p["10.9.1.3:80"]
		return !in && in3 && w == 0
	})
	l.eventually("rs1's notify_down", func() bool { return l.ran("rs1.down") })

	stop := watchPool(l.d.model, 80, "10.9.1.1:80")
	if err := l.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if stop() {
		t.Error("the reload put the failed rs1 back in the pool for a while")
	}
	p := l.pool(80)
	if _, in := p["10.9.1.1:80"]; in {
		t.Fatalf("rs1 back in the pool after the reload: %v", p)
	}
	if w, in := p["10.9.1.3:80"]; !in || w != 0 {
		t.Fatalf("inhibited rs3 not at weight 0 after the reload: %v", p)
	}
	if w := p["10.9.1.2:80"]; w != 1 {
		t.Fatalf("rs2 lost its place: %v", p)
	}
	// Still down for the new checks: no change, so no notify_down, and
	// still out several delay loops later.
	r := l.d.currentChecks().runner
	key := "[10.9.1.1]:tcp:80 from VS [10.9.0.1]:tcp:80"
	if up, ok := r.Up(key); up || !ok {
		t.Fatalf("rs1 in the new checks: up %v, present %v", up, ok)
	}
	os.Remove(filepath.Join(l.dir, "rs1.down"))
	if !l.holds(300*time.Millisecond, func() bool { _, in := l.pool(80)["10.9.1.1:80"]; return !in }) {
		t.Fatal("rs1 rejoined while failing")
	}
	if l.ran("rs1.down") {
		t.Error("notify_down ran again for a server that was already down")
	}

	l.healthy("rs1", true)
	l.healthy("rs3", true)
	l.eventually("rs1 back, rs3 at weight 1", func() bool {
		p := l.pool(80)
		return p["10.9.1.1:80"] == 1 && p["10.9.1.3:80"] == 1
	})
	l.eventually("rs1's notify_up", func() bool { return l.ran("rs1.up") })
	l.eventually("rs3's notify_up", func() bool { return l.ran("rs3.up") })
	if l.ran("rs2.up") || l.ran("rs2.down") {
		t.Error("notify scripts ran for rs2, which never changed")
	}
}

// TestReloadKeepsRetries: the retries a failing server has used survive
// a reload, as keepalived's retry_it does: with retry 1, one failure
// before the reload and one after take it down, without waiting
// delay_before_retry for a second try.
func TestReloadKeepsRetries(t *testing.T) {
	l := newCheckLab(t)
	l.healthy("rs1", true)
	l.start(vsConf(80, "", `    real_server 10.9.1.1 80 {
        MISC_CHECK {
            misc_path "test -e DIR/rs1.ok"
            delay_loop 0.05
            retry 1
            delay_before_retry 30
        }
    }
`))
	// Stop the checks as a reload does, and give the server one used
	// retry, as if its last check had failed.
	l.d.checksMu.Lock()
	prev := l.d.stopChecksLocked()
	l.d.checksMu.Unlock()
	if len(prev.servers) != 1 {
		t.Fatalf("%d checked servers", len(prev.servers))
	}
	var id checkID
	for k, c := range prev.servers {
		if c.key != "[10.9.1.1]:tcp:80 from VS [10.9.0.1]:tcp:80" || len(c.state.Probes) != 1 || !c.state.Up {
			t.Fatalf("stopped state %+v of %s", c.state, c.key)
		}
		c.state.Probes[0].Fails = 1
		id = k
	}
	next, err := l.d.planChecks(mustParse(t, l.d.opts.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	next.migrate(prev)
	if st := next.servers[id].start; !st.Up || st.Probes[0].Fails != 1 {
		t.Fatalf("migrated state %+v, want up with 1 retry used", st)
	}
	l.healthy("rs1", false)
	l.d.checksMu.Lock()
	l.d.startChecksLocked(next)
	l.d.checksMu.Unlock()
	// eventually gives up after 10 s, well before the 30 s
	// delay_before_retry a forgotten retry would wait.
	l.eventually("rs1 out (if never: the retry used before the reload was forgotten)",
		func() bool { _, in := l.pool(80)["10.9.1.1:80"]; return !in })
}

func mustParse(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestReloadKeepsLostQuorum: a service that lost its quorum keeps the
// sorry server across a reload, and its live servers stay out until the
// quorum is back.
func TestReloadKeepsLostQuorum(t *testing.T) {
	l := newCheckLab(t)
	l.healthy("rs1", true)
	l.healthy("rs2", true)
	conf := vsConf(80, "    quorum 2\n    sorry_server 10.9.2.1 80\n",
		misc("10.9.1.1", "rs1", ""), misc("10.9.1.2", "rs2", ""))
	l.start(conf)
	l.healthy("rs1", false)
	sorry := map[string]int32{"10.9.2.1:80": 1}
	l.eventually("the sorry server alone", func() bool { return fmt.Sprint(l.pool(80)) == fmt.Sprint(sorry) })
	stop := watchPool(l.d.model, 80, "10.9.1.2:80")
	if err := l.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if stop() {
		t.Error("the reload put rs2 back while the quorum was lost")
	}
	if got := l.pool(80); fmt.Sprint(got) != fmt.Sprint(sorry) {
		t.Fatalf("after the reload: %v, want the sorry server alone", got)
	}
	l.healthy("rs1", true)
	l.eventually("both servers back, no sorry server", func() bool {
		p := l.pool(80)
		return len(p) == 2 && p["10.9.1.1:80"] == 1 && p["10.9.1.2:80"] == 1
	})
}

// TestQuorumHysteresis: keepalived's arithmetic. With quorum 3 and
// hysteresis 1 the quorum, held, is lost below 2; lost, it comes back at
// 4. quorum_down and quorum_up run on the changes, and the sorry server
// holds the service in between.
func TestQuorumHysteresis(t *testing.T) {
	q := &quorum{quorum: 3, hyst: 1}
	for _, c := range []struct {
		lost bool
		sum  int64
		want bool
	}{
		{false, 4, false}, {false, 3, false}, {false, 2, false}, {false, 1, true}, {false, 0, true},
		{true, 0, true}, {true, 2, true}, {true, 3, true}, {true, 4, false}, {true, 5, false},
	} {
		q.lost = c.lost
		if got := q.next(c.sum); got != c.want {
			t.Errorf("lost %v, live weight %d: lost %v, want %v", c.lost, c.sum, got, c.want)
		}
	}

	l := newCheckLab(t)
	names := []string{"rs1", "rs2", "rs3", "rs4"}
	var servers []string
	for i, n := range names {
		l.healthy(n, true)
		servers = append(servers, misc(fmt.Sprintf("10.9.1.%d", i+1), n, ""))
	}
	l.start(vsConf(80, `    quorum 3
    hysteresis 1
    quorum_up "touch DIR/quorum.up"
    quorum_down "touch DIR/quorum.down"
    sorry_server 10.9.2.1 80
`, servers...))
	live := func(n int) func() bool {
		return func() bool {
			p := l.pool(80)
			_, sorry := p["10.9.2.1:80"]
			return len(p) == n && !sorry
		}
	}
	onSorry := func() bool { return fmt.Sprint(l.pool(80)) == "map[10.9.2.1:80:1]" }
	// up reports whether the checks have real server 10.9.1.i up.
	up := func(i int) bool {
		up, _ := l.d.currentChecks().runner.Up(fmt.Sprintf("[10.9.1.%d]:tcp:80 from VS [10.9.0.1]:tcp:80", i))
		return up
	}

	l.healthy("rs1", false)
	l.healthy("rs2", false)
	l.eventually("two live servers (weight 2 >= 3-1)", live(2))
	// The quorum is decided once the runner reports both down: Up takes
	// the server's state lock, which the callback holds while it
	// evaluates the quorum.
	l.eventually("rs1 and rs2 down", func() bool { return !up(1) && !up(2) })
	if l.d.currentChecks().svcs[0].q.lostNow() || l.ran("quorum.down") {
		t.Fatal("quorum_down at weight 2")
	}
	l.healthy("rs3", false)
	l.eventually("the sorry server (weight 1 < 3-1)", onSorry)
	l.eventually("quorum_down", func() bool { return l.ran("quorum.down") })

	l.healthy("rs1", true)
	l.healthy("rs2", true)
	l.eventually("rs1 and rs2 up", func() bool { return up(1) && up(2) })
	// Weight 3 is not 3+1: still on the sorry server.
	if !l.holds(200*time.Millisecond, onSorry) {
		t.Fatalf("quorum back at weight 3: %v", l.pool(80))
	}
	if l.ran("quorum.up") {
		t.Fatal("quorum_up at weight 3")
	}
	l.healthy("rs3", true)
	l.eventually("four live servers (weight 4 >= 3+1)", live(4))
	l.eventually("quorum_up", func() bool { return l.ran("quorum.up") })
}

// omegaConf has two virtual servers; :80 with omega, its rs2 starting
// down (alpha, failing), :81 without omega.
func omegaConf(omega80 string) string {
	return vsConf(80, omega80+"    quorum 1\n    quorum_down \"touch DIR/q80.down\"\n",
		misc("10.9.1.1", "rs1", ""), misc("10.9.1.2", "rs2", "        alpha\n")) +
		vsConf(81, "    quorum 1\n    quorum_down \"touch DIR/q81.down\"\n", misc("10.9.1.3", "rs3", ""))
}

// TestOmegaOnShutdown: with omega, stopping runs the notify_down of each
// live real server and quorum_down, and waits for them; without omega,
// nothing runs.
func TestOmegaOnShutdown(t *testing.T) {
	l := newCheckLab(t)
	l.healthy("rs1", true)
	l.healthy("rs3", true)
	l.start(omegaConf("    omega\n"))
	if _, in := l.pool(80)["10.9.1.2:80"]; in {
		t.Fatal("alpha rs2 in the pool at start")
	}
	l.cancel()
	l.d.stopChecks() // waits for the scripts, whoever runs them
	for _, s := range []string{"rs1.down", "q80.down"} {
		if !l.ran(s) {
			t.Errorf("%s did not run on shutdown", s)
		}
	}
	for _, s := range []string{"rs2.down", "rs3.down", "q81.down"} {
		if l.ran(s) {
			t.Errorf("%s ran on shutdown", s)
		}
	}
	l.d.stopChecks() // again: nothing
}

// TestOmegaLostQuorumOnShutdown: a quorum already lost does not run
// quorum_down again on shutdown.
func TestOmegaLostQuorumOnShutdown(t *testing.T) {
	l := newCheckLab(t)
	l.healthy("rs1", true)
	l.start(vsConf(80, "    omega\n    quorum 1\n    quorum_down \"touch DIR/q80.down\"\n", misc("10.9.1.1", "rs1", "")))
	l.healthy("rs1", false)
	l.eventually("lost quorum", func() bool { return l.ran("q80.down") && l.ran("rs1.down") })
	os.Remove(filepath.Join(l.dir, "q80.down"))
	os.Remove(filepath.Join(l.dir, "rs1.down"))
	l.cancel()
	l.d.stopChecks()
	if l.ran("q80.down") || l.ran("rs1.down") {
		t.Error("scripts ran on shutdown for a service already down")
	}
}

// TestOmegaOnReload: a reload that removes a virtual server with omega
// runs its live servers' notify_down and its quorum_down; one that
// removes a live real server from a virtual server that stays runs that
// server's notify_down (keepalived does, whatever omega).
func TestOmegaOnReload(t *testing.T) {
	l := newCheckLab(t)
	l.healthy("rs1", true)
	l.healthy("rs3", true)
	l.healthy("rs4", true)
	l.start(vsConf(80, "    omega\n    quorum 1\n    quorum_down \"touch DIR/q80.down\"\n", misc("10.9.1.1", "rs1", "")) +
		vsConf(81, "", misc("10.9.1.3", "rs3", ""), misc("10.9.1.4", "rs4", "")))
	l.write(vsConf(81, "", misc("10.9.1.3", "rs3", "")))
	if err := l.d.Reload(); err != nil {
		t.Fatal(err)
	}
	l.eventually("rs1's notify_down, quorum_down and rs4's notify_down", func() bool {
		return l.ran("rs1.down") && l.ran("q80.down") && l.ran("rs4.down")
	})
	if l.ran("rs3.down") {
		t.Error("notify_down for rs3, which stays")
	}
	if len(l.pool(80)) != 0 || len(l.pool(81)) != 1 {
		t.Errorf("after the reload :80 %v, :81 %v", l.pool(80), l.pool(81))
	}
}
