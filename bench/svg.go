package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartLeft   = 56.0  // room for the y axis labels
	chartTop    = 56.0  // title and legend
	chartHeight = 240.0 // plot area
	chartBottom = 64.0  // metric labels
	chartRight  = 16.0
	barWidth    = 16.0
	groupGap    = 28.0
	// chartCap clips bars: a ratio above it is drawn at the cap, labelled
	// with its value.
	chartCap = 4.0
)

// palette colours the columns in order; the baseline is always the first.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// SVG renders grouped bars, one group per compared metric, one bar per
// peer, each the peer's median over the baseline's (uvs = 1, drawn first).
// It returns a self-contained SVG document; with nothing to compare, a
// document that says so.
func (r *Report) SVG() string {
	base := r.baseline()
	cols := []*Column{}
	if base != nil {
		cols = append(cols, base)
		for _, c := range r.Columns {
			if c != base && len(c.Samples) > 0 {
				cols = append(cols, c)
			}
		}
	}
	type group struct {
		m      Metric
		ratios []float64 // per cols; NaN when missing
	}
	var groups []group
	top := 1.0
	for _, m := range r.rows() {
		if m.UVSOnly || base == nil {
			continue
		}
		b, ok := Summarize(base.Samples[m.Key])
		if !ok || b.Median == 0 {
			continue
		}
		g := group{m: m}
		for _, c := range cols {
			s, ok := Summarize(c.Samples[m.Key])
			v := math.NaN()
			if ok {
				v = s.Median / b.Median
				top = max(top, min(v, chartCap))
			}
			g.ratios = append(g.ratios, v)
		}
		groups = append(groups, g)
	}
	top = math.Ceil(top*2) / 2 // a multiple of 0.5

	groupW := float64(len(cols))*barWidth + groupGap
	width := chartLeft + float64(max(len(groups), 1))*groupW + chartRight
	width = max(width, 480)
	height := chartTop + chartHeight + chartBottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s" font-family="sans-serif" font-size="11">`+"\n",
		f1(width), f1(height), f1(width), f1(height))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := "uvs lab benchmark: nothing to compare"
	if base != nil && len(groups) > 0 {
		title = fmt.Sprintf("median per metric, normalised to %s = 1 (%d run(s) of %s)", base.Peer, r.Runs, r.Duration)
	}
	fmt.Fprintf(&b, `<text x="%s" y="18" font-size="13" font-weight="bold">%s</text>`+"\n", f1(chartLeft), esc(title))
	// Legend.
	x := chartLeft
	for i, c := range cols {
		fmt.Fprintf(&b, `<rect x="%s" y="28" width="10" height="10" fill="%s"/>`+"\n", f1(x), palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%s" y="37">%s</text>`+"\n", f1(x+14), esc(c.Peer))
		x += 14 + 7*float64(len(c.Peer)) + 16
	}
	if len(groups) == 0 {
		b.WriteString("</svg>\n")
		return b.String()
	}
	y := func(v float64) float64 { return chartTop + chartHeight - chartHeight*min(v, top)/top }
	// Grid lines every 0.5, the line at 1 darker.
	for v := 0.0; v <= top+1e-9; v += 0.5 {
		stroke, w := "#dddddd", "1"
		if v == 1 {
			stroke, w = "#333333", "1.5"
		}
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"/>`+"\n",
			f1(chartLeft), f1(y(v)), f1(width-chartRight), f1(y(v)), stroke, w)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end">%s</text>`+"\n", f1(chartLeft-6), f1(y(v)+4), strconv.FormatFloat(v, 'f', 1, 64))
	}
	for gi, g := range groups {
		gx := chartLeft + float64(gi)*groupW + groupGap/2
		for ci, v := range g.ratios {
			if math.IsNaN(v) {
				continue
			}
			bx := gx + float64(ci)*barWidth
			fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				f1(bx), f1(y(v)), f1(barWidth-2), f1(chartTop+chartHeight-y(v)), palette[ci%len(palette)],
				esc(cols[ci].Peer), esc(g.m.Load+" "+g.m.Name), strconv.FormatFloat(v, 'f', 2, 64))
			if v > top {
				// Staggered so that neighbouring labels never overlap.
				digits := 1
				if v >= 10 {
					digits = 0
				}
				fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" font-size="9">%s</text>`+"\n",
					f1(bx+barWidth/2-1), f1(y(v)-3-10*float64(ci%2)), strconv.FormatFloat(v, 'f', digits, 64))
			}
		}
		cx := gx + float64(len(cols))*barWidth/2
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(cx), f1(chartTop+chartHeight+16), esc(g.m.Load))
		name := g.m.Name
		if !g.m.Higher {
			name += " ↓"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`+"\n", f1(cx), f1(chartTop+chartHeight+30), esc(name))
	}
	fmt.Fprintf(&b, `<text x="%s" y="%s" font-size="10" fill="#555555">↓: lower is better; otherwise higher is better</text>`+"\n",
		f1(chartLeft), f1(height-10))
	b.WriteString("</svg>\n")
	return b.String()
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string { return html.EscapeString(s) }
