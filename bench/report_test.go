package bench

import (
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", name, got)
	}
}

// sampleReport is a fixed report: three runs, uvs with its own figures,
// haproxy without UDP, a missing run and a skipped peer.
func sampleReport() *Report {
	r := &Report{Runs: 3, Duration: 5 * time.Second}
	add := func(peer, key string, vs ...float64) {
		c := r.Column(peer)
		for _, v := range vs {
			c.Add(key, v)
		}
	}
	for _, p := range []struct {
		name              string
		rps, cps, gbps, u []float64
	}{
		{"kernel", []float64{34800, 33100, 36020}, []float64{12304, 11800, 12900}, []float64{9.9, 9.7, 10.2}, []float64{129, 120, 131}},
		{"nft", []float64{35888, 34000, 37000}, []float64{9642, 9000, 9700}, []float64{8.5, 8.1, 8.8}, []float64{106, 101, 110}},
		{"haproxy", []float64{27690, 27000, 28100}, []float64{6447, 6400}, []float64{4.5, 4.4, 4.6}, nil},
		{"uvs", []float64{30000, 29000, 31000}, []float64{10000, 9800, 10100}, []float64{5.6, 5.5, 5.9}, []float64{200, 190, 210}},
	} {
		add(p.name, "ka.rps", p.rps...)
		add(p.name, "ka.p50", 0.8, 0.7, 0.9)
		add(p.name, "ka.p99", 3.1, 2.9, 3.5)
		add(p.name, "close.rps", p.cps...)
		add(p.name, "close.p50", 2.0, 2.1, 1.9)
		add(p.name, "close.p99", 7.1, 6.5, 11.7)
		add(p.name, "close.retrans", 0, 0.4, 12.5)
		add(p.name, "iperf3.gbps", p.gbps...)
		add(p.name, "udp.rx", p.u...)
		if p.u != nil {
			add(p.name, "udp.tx", 300, 310, 305)
		}
	}
	add("uvs", "ka.cpu", 5.84, 5.9, 5.7)
	add("uvs", "udp.cpu", 5.09)
	add("uvs", "rss", 178.3)
	r.Notef("ipvs: skipped: no ip_vs module")
	r.Notef("haproxy: wrk-close run 3: wrk: no requests completed (0 errors)")
	return r
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		in   []float64
		want Summary
	}{
		{[]float64{3}, Summary{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Summary{3, 1, 5, 3}},
		{[]float64{4, 1, 3, 2}, Summary{2.5, 1, 4, 4}},
	}
	for _, tt := range tests {
		got, ok := Summarize(tt.in)
		if !ok || got != tt.want {
			t.Errorf("Summarize(%v) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
		}
	}
	if _, ok := Summarize(nil); ok {
		t.Error("Summarize(nil) reported a value")
	}
}

func TestFormatNum(t *testing.T) {
	tests := []struct {
		v      float64
		digits int
		want   string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{34800.4, 0, "34,800"},
		{1234567.891, 2, "1,234,567.89"},
		{-12345.5, 1, "-12,345.5"},
		{0.005, 2, "0.01"},
	}
	for _, tt := range tests {
		if got := formatNum(tt.v, tt.digits); got != tt.want {
			t.Errorf("formatNum(%v, %d) = %q, want %q", tt.v, tt.digits, got, tt.want)
		}
	}
}

func TestReportText(t *testing.T)     { golden(t, "report.txt", sampleReport().Text()) }
func TestReportMarkdown(t *testing.T) { golden(t, "report.md", sampleReport().Markdown()) }
func TestReportSVG(t *testing.T)      { golden(t, "report.svg", sampleReport().SVG()) }

// Without uvs the ratios and the chart are relative to the first peer.
func TestReportWithoutUVS(t *testing.T) {
	r := &Report{Runs: 1, Duration: 2 * time.Second}
	r.Column("kernel").Add("ka.rps", 1000)
	r.Column("nft").Add("ka.rps", 1500)
	golden(t, "report-nouvs.txt", r.Text())
	if s := r.SVG(); !strings.Contains(s, "normalised to kernel = 1") {
		t.Errorf("SVG title does not name the kernel baseline:\n%s", s)
	}
}

// The chart is well-formed XML whatever the report holds.
func TestSVGWellFormed(t *testing.T) {
	for name, r := range map[string]*Report{
		"sample": sampleReport(),
		"empty":  {Runs: 1, Duration: time.Second},
		"onlyUVS": func() *Report {
			r := &Report{Runs: 1, Duration: time.Second}
			r.Column("uvs").Add("ka.rps", 1)
			return r
		}(),
		"huge ratio": func() *Report {
			r := &Report{Runs: 1, Duration: time.Second}
			r.Column("uvs").Add("ka.rps", 1)
			r.Column("kernel").Add("ka.rps", 100)
			return r
		}(),
	} {
		d := xml.NewDecoder(strings.NewReader(r.SVG()))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("%s: SVG is not well-formed: %v", name, err)
				break
			}
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	paths, err := sampleReport().WriteFiles(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("wrote %v, want 3 files", paths)
	}
	md, err := os.ReadFile(filepath.Join(dir, "out", TableFile))
	if err != nil || string(md) != sampleReport().Markdown() {
		t.Errorf("%s: %v, or not the report's markdown", TableFile, err)
	}
}
