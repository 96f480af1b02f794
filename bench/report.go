package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metric is one row of the report.
type Metric struct {
	Key    string // stable identifier, e.g. "ka.rps"
	Load   string // the load it comes from, e.g. "wrk keep-alive"
	Name   string // what it measures, with its unit, e.g. "req/s"
	Digits int    // decimals shown
	Higher bool   // a larger figure is better
	// UVSOnly marks figures only uvsd has (its CPU and memory): they get
	// no ratio and no bar.
	UVSOnly bool
}

// The report's rows, in order.
var metrics = []Metric{
	{Key: "ka.rps", Load: "wrk keep-alive", Name: "req/s", Higher: true},
	{Key: "ka.p50", Load: "wrk keep-alive", Name: "p50 ms", Digits: 2},
	{Key: "ka.p99", Load: "wrk keep-alive", Name: "p99 ms", Digits: 2},
	// The whole machine's CPU (every process and the kernel) per
	// request, and how busy the CPUs were: on a machine the load
	// saturates, the cost per request is what sets the rate.
	{Key: "ka.mcpu", Load: "wrk keep-alive", Name: "machine CPU µs/req", Digits: 1},
	{Key: "ka.busy", Load: "wrk keep-alive", Name: "machine CPUs busy %", Digits: 0},
	{Key: "close.rps", Load: "wrk close", Name: "conn/s", Higher: true},
	{Key: "close.p50", Load: "wrk close", Name: "p50 ms", Digits: 2},
	{Key: "close.p99", Load: "wrk close", Name: "p99 ms", Digits: 2},
	// wrk's latencies leave connection setup out: lost SYNs show here.
	{Key: "close.retrans", Load: "wrk close", Name: "client TCP retrans/1k conn", Digits: 1},
	{Key: "close.mcpu", Load: "wrk close", Name: "machine CPU µs/conn", Digits: 1},
	{Key: "close.busy", Load: "wrk close", Name: "machine CPUs busy %", Digits: 0},
	{Key: "iperf3.gbps", Load: "iperf3 1 flow", Name: "Gbit/s", Digits: 2, Higher: true},
	{Key: "udp.rx", Load: "udp 64 B", Name: "delivered kpps", Digits: 1, Higher: true},
	{Key: "udp.tx", Load: "udp 64 B", Name: "sent kpps", Digits: 1, Higher: true},
	{Key: "sink.rx", Load: "udp 64 B, servers drop at ingress", Name: "delivered kpps", Digits: 1, Higher: true},
	{Key: "sink.tx", Load: "udp 64 B, servers drop at ingress", Name: "sent kpps", Digits: 1, Higher: true},
	{Key: "ka.cpu", Load: "uvsd", Name: "CPU s/Mpkt, keep-alive", Digits: 2, UVSOnly: true},
	{Key: "close.cpu", Load: "uvsd", Name: "CPU s/Mpkt, close", Digits: 2, UVSOnly: true},
	{Key: "iperf3.cpu", Load: "uvsd", Name: "CPU s/Mpkt, iperf3", Digits: 2, UVSOnly: true},
	{Key: "udp.cpu", Load: "uvsd", Name: "CPU s/Mpkt, udp", Digits: 2, UVSOnly: true},
	{Key: "sink.cpu", Load: "uvsd", Name: "CPU s/Mpkt, udp-sink", Digits: 2, UVSOnly: true},
	{Key: "rss", Load: "uvsd", Name: "RSS MiB (max)", Digits: 1, UVSOnly: true},
}

// Metrics returns the report's rows, in order.
func Metrics() []Metric { return slices.Clone(metrics) }

// Column is one peer's results: every run's figure per metric key.
type Column struct {
	Peer    string
	Samples map[string][]float64
}

// Add records one run's figure.
func (c *Column) Add(key string, v float64) {
	if c.Samples == nil {
		c.Samples = map[string][]float64{}
	}
	c.Samples[key] = append(c.Samples[key], v)
}

// Summary is the median and range of a metric's runs.
type Summary struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median (the mean of the middle two for an even
// count) and range of vs, and false when vs is empty.
func Summarize(vs []float64) (Summary, bool) {
	if len(vs) == 0 {
		return Summary{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}, true
}

// Report is a whole benchmark: columns in peer order, and notes (skipped
// peers, failed runs) printed under the table.
type Report struct {
	Runs     int
	Duration time.Duration
	Columns  []*Column
	Notes    []string
}

// Column returns the column of peer, adding it if missing.
func (r *Report) Column(peer string) *Column {
	for _, c := range r.Columns {
		if c.Peer == peer {
			return c
		}
	}
	c := &Column{Peer: peer, Samples: map[string][]float64{}}
	r.Columns = append(r.Columns, c)
	return c
}

// Notef adds a note.
func (r *Report) Notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// baseline is the column the ratios and the chart are relative to: the
// first uvs column with figures, else the first column with figures.
func (r *Report) baseline() *Column {
	for _, c := range r.Columns {
		if strings.HasPrefix(c.Peer, "uvs") && len(c.Samples) > 0 {
			return c
		}
	}
	for _, c := range r.Columns {
		if len(c.Samples) > 0 {
			return c
		}
	}
	return nil
}

// rows returns the metrics that have a figure in at least one column.
func (r *Report) rows() []Metric {
	var out []Metric
	for _, m := range metrics {
		for _, c := range r.Columns {
			if len(c.Samples[m.Key]) > 0 {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// cell renders a summary: "median (min–max)", or the median alone for
// one run; "—" when there is no figure.
func cell(c *Column, m Metric) string {
	s, ok := Summarize(c.Samples[m.Key])
	if !ok {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return formatNum(s.Median, m.Digits)
	}
	return formatNum(s.Median, m.Digits) + " (" + formatNum(s.Min, m.Digits) + "–" + formatNum(s.Max, m.Digits) + ")"
}

// ratio renders c's median over the baseline's, "—" when either is
// missing or the baseline is zero.
func ratio(c, base *Column, m Metric) string {
	s, ok := Summarize(c.Samples[m.Key])
	b, bok := Summarize(base.Samples[m.Key])
	if !ok || !bok || b.Median == 0 {
		return "—"
	}
	return strconv.FormatFloat(s.Median/b.Median, 'f', 2, 64)
}

// formatNum formats v with digits decimals and thousands separators.
func formatNum(v float64, digits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := b.String()
	if frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// grid is the table as strings: a header row, then one row per metric.
// ratios adds, per non-baseline column, the ratio to the baseline.
func (r *Report) grid() (header []string, body [][]string, ratioHeader []string, ratioBody [][]string) {
	header = []string{"load", "metric"}
	for _, c := range r.Columns {
		header = append(header, c.Peer)
	}
	rows := r.rows()
	for _, m := range rows {
		row := []string{m.Load, m.Name}
		for _, c := range r.Columns {
			row = append(row, cell(c, m))
		}
		body = append(body, row)
	}
	base := r.baseline()
	if base == nil {
		return
	}
	ratioHeader = []string{"load", "metric"}
	for _, c := range r.Columns {
		if c != base {
			ratioHeader = append(ratioHeader, c.Peer+"/"+base.Peer)
		}
	}
	if len(ratioHeader) == 2 {
		return header, body, nil, nil
	}
	for _, m := range rows {
		if m.UVSOnly {
			continue
		}
		row := []string{m.Load, m.Name}
		for _, c := range r.Columns {
			if c != base {
				row = append(row, ratio(c, base, m))
			}
		}
		ratioBody = append(ratioBody, row)
	}
	return
}

// title is the line above the table.
func (r *Report) title() string {
	return fmt.Sprintf("median (min–max) of %d run(s) of %s per load", r.Runs, r.Duration)
}

// ratioTitle is the line above the ratio table.
func (r *Report) ratioTitle() string {
	base := r.baseline()
	if base == nil {
		return ""
	}
	return fmt.Sprintf("ratio of medians, peer / %s (above 1: the peer's figure is larger — better for rates, worse for latencies)", base.Peer)
}

// Text renders the report as aligned plain-text tables and its notes.
func (r *Report) Text() string {
	var b strings.Builder
	header, body, rh, rb := r.grid()
	b.WriteString(r.title() + "\n\n")
	writeAligned(&b, header, body)
	if rh != nil {
		b.WriteString("\n" + r.ratioTitle() + "\n\n")
		writeAligned(&b, rh, rb)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("note: " + n + "\n")
		}
	}
	return b.String()
}

// writeAligned writes rows under header, the first two columns
// left-aligned, the others right-aligned, two blanks apart.
func writeAligned(b *strings.Builder, header []string, body [][]string) {
	all := append([][]string{header}, body...)
	w := make([]int, len(header))
	for _, row := range all {
		for i, s := range row {
			w[i] = max(w[i], len([]rune(s)))
		}
	}
	line := func(row []string) {
		var l strings.Builder
		for i, s := range row {
			pad := strings.Repeat(" ", w[i]-len([]rune(s)))
			if i > 0 {
				l.WriteString("  ")
			}
			if i < 2 {
				l.WriteString(s + pad)
			} else {
				l.WriteString(pad + s)
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", w[i])
	}
	line(sep)
	for _, row := range body {
		line(row)
	}
}

// Markdown renders the report as GitHub-flavoured markdown tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	header, body, rh, rb := r.grid()
	b.WriteString("# uvs lab benchmark\n\n" + r.title() + "\n\n")
	writeMarkdown(&b, header, body)
	if rh != nil {
		b.WriteString("\n" + r.ratioTitle() + "\n\n")
		writeMarkdown(&b, rh, rb)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

func writeMarkdown(b *strings.Builder, header []string, body [][]string) {
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for i := range header {
		if i < 2 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, row := range body {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
}
