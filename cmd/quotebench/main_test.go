package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv(floorPeerEnv) == "1" {
		floorPeer() // the floor scenario re-executes this test binary as its reader
	}
	os.Exit(m.Run())
}

// TestEveryScenarioRuns runs every scenario at the tiny size with the real
// binaries: it fails when one no longer completes or reports no figures.
func TestEveryScenarioRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds quotehub and quoteload and runs every scenario")
	}
	const redisAddr = "127.0.0.1:6379"
	want := map[string]bool{}
	if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s for the cluster scenario: %v", redisAddr, err)
		}
		t.Logf("no Redis at %s: running every scenario but cluster", redisAddr)
		for _, s := range scenarios {
			want[s] = s != "cluster"
		}
	} else {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	b, err := newBench(ctx, sizes["tiny"], redisAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	failed := b.run(want)
	md := b.md.String()
	t.Logf("\n%s", md)
	if len(failed) > 0 {
		t.Fatalf("scenarios not completed: %v", failed)
	}

	for _, s := range scenarios {
		if len(want) > 0 && !want[s] {
			continue
		}
		if !strings.Contains(md, "\n### "+s) {
			t.Errorf("no section for %s", s)
		}
	}
	for _, re := range []string{
		`## quotebench -size tiny — \d{4}-\d\d-\d\d \d\d:\d\d UTC, commit [0-9a-f]+`, // header with date and commit
		`Machine: \d+ × `,
		`BenchmarkPublishFanout/subscribers=1000`,         // micro
		`\| 100ms \| goroutine per conn \| 200 \| [1-9]`,  // floor: something received
		`Highest tick rate within p99 ≤ 50 ms: [0-9.]+/s`, // fan-out summaries
		`\| 50 \| [0-9.]+ KiB \| [1-9]`,                   // idle: all connected, RSS, rate
		`\| [1-9][0-9]* \| [0-9.]+ ms \| [0-9.]+ ms \|`,   // reads
		// slowreaders: one slow client's windows and verdict, then the
		// slow clients (2 of 20) and the others apart.
		`\| 0–1 s \| [1-9][0-9]* \| [0-9]+ \| [0-9]+ \| [0-9]+ \| (yes|no) \|`,
		`Stayed connected: (yes|no)`,
		`\| slow \| 2 \| [0-9]+ \| [^|]+ \| [1-9][0-9]* \| [0-9.]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9]+ \| 0 \| [0-9]+ \|`,
		`\| others \| 18 \| [0-9]+ \| [^|]+ \| [1-9][0-9]* \| `,
		`µs per delivered quote`,
		// portfolios: every follower connected and valued; valued reads.
		`\| 20 \| [0-9.]+ s \(0 errors\) \| [1-9][0-9]* \| [0-9]+ ms \| [0-9]+ ms \|`,
		`\| as fast as answered \| [1-9][0-9]* \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \|`,
		`\| 200/s offered \| [1-9][0-9]* \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \|`,
		// soak: samples taken, and the node back to its baseline.
		`\| [1-9][0-9]*s \| [0-9.]+ \| [1-9][0-9]* \| [1-9][0-9]* \|`, // a sample (a busy machine may take it late)
		`Back to baseline after the load \(fds and goroutines\): yes`,
	} {
		if !regexp.MustCompile(re).MatchString(md) {
			t.Errorf("results lack %q", re)
		}
	}
	// Churn's verdict: every cycle completed and the server is back to
	// its baseline.
	i := strings.Index(md, "### churn")
	j := strings.Index(md[i:], "```json\n")
	k := strings.Index(md[i+j+8:], "```")
	if i < 0 || j < 0 || k < 0 {
		t.Fatal("no churn JSON")
	}
	var churn struct {
		Attempts, Successes, Failures uint64
		BackToBaseline                *bool `json:"back_to_baseline"`
	}
	if err := json.Unmarshal([]byte(md[i+j+8:i+j+8+k]), &churn); err != nil {
		t.Fatal(err)
	}
	if churn.Successes == 0 || churn.Failures != 0 || churn.BackToBaseline == nil || !*churn.BackToBaseline {
		t.Errorf("churn: %+v (back to baseline %v)", churn, churn.BackToBaseline)
	}
}

func TestParseOnly(t *testing.T) {
	want, err := parseOnly(" floor, idle ,,")
	if err != nil || len(want) != 2 || !want["floor"] || !want["idle"] {
		t.Errorf("parseOnly = %v, %v", want, err)
	}
	if want, err := parseOnly(""); err != nil || len(want) != 0 {
		t.Errorf("parseOnly(\"\") = %v, %v; want all scenarios", want, err)
	}
	if _, err := parseOnly("floor,fanout"); err == nil || !strings.Contains(err.Error(), `"fanout"`) {
		t.Errorf("an unknown scenario: %v", err)
	}
}

func TestCheckSlow(t *testing.T) {
	age := func(n uint64) *ageStats { return &ageStats{Count: n} }
	ok := func() *report {
		return &report{Connected: 10, Groups: []*slowGroup{
			{Name: "others", Deliveries: 5, Age: age(5)},
			{Name: "slow", Deliveries: 1, Age: age(1), Dropped: 1, Disconnects: map[string]int{"close_4000": 1}},
		}}
	}
	if err := ok().checkSlow(10); err != nil {
		t.Errorf("usable figures (a slow client dropped is a figure, not a failure): %v", err)
	}
	for want, spoil := range map[string]func(*report){
		"9 of 10 clients connected":         func(r *report) { r.Connected, r.Failed = 9, 1 },
		"no groups":                         func(r *report) { r.Groups = nil },
		"2 seq regressions":                 func(r *report) { r.SeqRegressions = 2 },
		"no quotes delivered to the slow":   func(r *report) { r.Groups[1].Deliveries = 0 },
		"no quotes delivered to the others": func(r *report) { r.Groups[0].Age = nil },
	} {
		r := ok()
		spoil(r)
		if err := r.checkSlow(10); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	if got := disconnects(map[string]int{"reset": 1, "close_4000": 3}); got != "close_4000=3 reset=1" {
		t.Errorf("disconnects = %q", got)
	}
	if got := disconnects(nil); got != "none" {
		t.Errorf("disconnects(nil) = %q", got)
	}
}

func TestSoakVerdict(t *testing.T) {
	steady := func(n int, rss, g float64, grow float64) []soakSample {
		var out []soakSample
		for i := range n {
			f := 1 + grow*float64(i)/float64(n)
			out = append(out, soakSample{rss: rss * f, goroutines: g, fds: 50})
		}
		return out
	}
	base := soakSample{rss: 10 << 20, goroutines: 16, fds: 12}
	for _, tc := range []struct {
		name         string
		samples      []soakSample
		after        soakSample
		flat, judged bool
		wantProblems int
	}{
		{"flat", steady(60, 30<<20, 40, 0), base, true, true, 0},
		{"noise within 5 %", steady(60, 30<<20, 40, 0.04), base, true, true, 0},
		{"RSS grows", steady(60, 30<<20, 40, 0.5), base, false, true, 1},
		{"too short to judge", steady(10, 30<<20, 40, 0.5), base, true, false, 0},
		{"fds leak", steady(60, 30<<20, 40, 0), soakSample{rss: 10 << 20, goroutines: 16, fds: 40}, true, true, 1},
		{"goroutines leak", steady(60, 30<<20, 40, 0), soakSample{rss: 10 << 20, goroutines: 30, fds: 12}, true, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flat, judged, problems := soakVerdict(tc.samples, base, tc.after)
			if flat != tc.flat || judged != tc.judged || len(problems) != tc.wantProblems {
				t.Errorf("flat %v judged %v problems %q; want %v %v and %d problems", flat, judged, problems, tc.flat, tc.judged, tc.wantProblems)
			}
		})
	}
}
