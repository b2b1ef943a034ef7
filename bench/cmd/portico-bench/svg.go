package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// propagationSVG plots addition p50 and p99 against route count on a log axis, with the
// targets marked. Hand-written SVG keeps the benchmark free of plotting dependencies.
func propagationSVG(ps []*propagationResult) []byte {
	const w, h, left, right, top, bottom = 640.0, 400.0, 70.0, 150.0, 30.0, 50.0
	var pts []*propagationResult
	maxMS := 250.0 * 1.1
	for _, p := range ps {
		if p.Unavailable == "" && len(p.Additions) > 0 {
			pts = append(pts, p)
			maxMS = math.Max(maxMS, float64(percentile(p.Additions, 99))/float64(time.Millisecond)*1.1)
		}
	}
	minX, maxX := math.Log10(50), math.Log10(20000)
	x := func(n float64) float64 { return left + (math.Log10(n)-minX)/(maxX-minX)*(w-left-right) }
	y := func(msv float64) float64 { return h - bottom - msv/maxMS*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Route addition: file written to first 200</text>`+"\n", left)
	// Axes, with ticks at the measured route counts and at even steps of time.
	fmt.Fprintf(&b, `<path d="M%.1f %.1f V%.1f H%.1f" stroke="black" fill="none"/>`+"\n", left, top, h-bottom, w-right)
	for _, n := range []float64{100, 1000, 3000, 10000} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n",
			x(n), top, x(n), h-bottom, x(n), h-bottom+16, n)
	}
	step := niceStep(maxMS / 5)
	for v := 0.0; v <= maxMS; v += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y(v), w-right, y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">routes (log scale)</text>`+"\n", (left+w-right)/2, h-12)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">milliseconds</text>`+"\n", (top+h-bottom)/2)
	// Targets: p99 under 100 ms at 3000 routes and under 250 ms at 10000.
	for _, t := range [][2]float64{{3000, 100}, {10000, 250}} {
		fmt.Fprintf(&b, `<path d="M%.1f %.1f h16 M%.1f %.1f h-16" stroke="green" stroke-width="2"/>`+"\n", x(t[0]), y(t[1]), x(t[0]), y(t[1]))
	}
	series := []struct {
		name, color string
		p           float64
	}{{"p50", "#1f77b4", 50}, {"p99", "#d62728", 99}}
	for i, s := range series {
		var path []string
		for _, p := range pts {
			px, py := x(float64(p.Routes)), y(float64(percentile(p.Additions, s.p))/float64(time.Millisecond))
			path = append(path, fmt.Sprintf("%.1f,%.1f", px, py))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px, py, s.color)
		}
		if len(path) > 0 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(path, " "), s.color)
		}
		ly := top + 20 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f">addition %s</text>`+"\n",
			w-right+15, ly, w-right+35, ly, s.color, w-right+40, ly+4, s.name)
	}
	ly := top + 60
	fmt.Fprintf(&b, `<path d="M%.1f %.1f h20" stroke="green" stroke-width="2"/><text x="%.1f" y="%.1f">p99 target</text>`+"\n", w-right+15, ly, w-right+40, ly+4)
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceStep rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}
