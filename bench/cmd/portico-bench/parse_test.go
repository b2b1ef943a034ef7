package main

import (
	"strings"
	"testing"
	"time"
)

// The harness's figures come from parsing wrk and h2load output; these pin the formats of the
// versions make bench installs, so a format change fails here instead of reporting zeros.
func TestParseLoadOutput(t *testing.T) {
	wrk := `Running 5s test @ http://127.0.0.1:8080/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  450.00us  12.00ms   90.00%
    Req/Sec    20.10k     1.00k   22.00k    70.00%
  Latency Distribution
     50%  850.00us
     75%    1.10ms
     90%    1.50ms
     99%    2.50ms
  100000 requests in 5.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  20000.50
Transfer/sec:      2.00MB
`
	h2 := `finished in 5.00s, 12345.60 req/s, 1.23MB/s
requests: 61728 total, 61728 started, 61728 done, 61720 succeeded, 8 failed, 0 errored, 0 timeout
status codes: 61720 2xx, 0 3xx, 0 4xx, 8 5xx
                     min         max         mean         sd        +/- sd
time for request:      111us      5.09ms      2.51ms       232us    86.80%
`
	for _, tc := range []struct {
		name  string
		parse func(string) (loadResult, error)
		in    string
		want  loadResult
	}{
		{"wrk", parseWrk, wrk, loadResult{RPS: 20000.5, P50: 850 * time.Microsecond, P99: 2500 * time.Microsecond, Non2xx: 7, Error: 3}},
		{"h2load", parseH2load, h2, loadResult{RPS: 12345.6, Mean: 2510 * time.Microsecond, Error: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if _, err := tc.parse(strings.Split(tc.in, "\n")[0]); err == nil {
				t.Errorf("truncated output parsed without error")
			}
		})
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 10 * time.Millisecond}, {99, 20 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestSplitAddition pins the portico log lines an addition's breakdown is read from: the first
// generation pushed after the file was written, and Envoy's ACK of that generation only.
func TestSplitAddition(t *testing.T) {
	written := time.Date(2026, 11, 22, 2, 4, 21, 986_400_000, time.UTC)
	log := `time=2026-11-22T02:04:20.724Z level=INFO msg="pushed xds generation" generation=1 rollback_of=0 listeners=1
time=2026-11-22T02:04:20.957Z level=DEBUG msg="envoy applied xds generation" generation=1
time=2026-11-22T02:04:21.986Z level=DEBUG msg="config file event" event="CREATE \"conf/add-1.yaml\""
time=2026-11-22T02:04:22.103Z level=DEBUG msg="configuration built" files=3 decoded=1
time=2026-11-22T02:04:22.103Z level=INFO msg="pushed xds generation" generation=12 rollback_of=0 listeners=1
time=2026-11-22T02:04:22.150Z level=DEBUG msg="envoy applied xds generation" generation=1
time=2026-11-22T02:04:22.178Z level=DEBUG msg="envoy applied xds generation" generation=12
time=2026-11-22T02:04:22.190Z level=INFO msg="pushed xds generation" generation=13 rollback_of=0 listeners=1
`
	got, ok := splitAddition(written, 200*time.Millisecond, log)
	want := additionSteps{Portico: 116600 * time.Microsecond, Envoy: 75 * time.Millisecond, Rest: 8400 * time.Microsecond}
	if !ok || got != want {
		t.Errorf("splitAddition = %+v, %t; want %+v", got, ok, want)
	}
	if _, ok := splitAddition(written, time.Second, strings.Split(log, "\n")[4]); ok {
		t.Error("split without Envoy's ACK")
	}
}
