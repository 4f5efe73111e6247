// Package deploy holds the production stack's files (Prometheus, alert
// rules, Grafana) and the tests that keep them true to the code.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tool returns the path of a command; without it the test is skipped,
// except under CI=true, where it fails (scripts/deploy-tools.sh installs
// them).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true (run scripts/deploy-tools.sh)", name)
		}
		t.Skipf("no %s (run scripts/deploy-tools.sh)", name)
	}
	return p
}

func TestAlertRules(t *testing.T) {
	bin := tool(t, "promtool")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every alert has a unit test and a runbook whose heading exists.
func TestEveryAlertHasATestAndARunbook(t *testing.T) {
	rules := read(t, "prometheus/alerts.yml")
	tests := read(t, "prometheus/alerts_test.yml")
	ops := read(t, "../docs/operations.md")
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(ops, -1) {
		anchors[anchor(m[1])] = true
	}
	alerts := regexp.MustCompile(`(?m)^\s+- alert: (\w+)$`).FindAllStringSubmatch(rules, -1)
	if len(alerts) == 0 {
		t.Fatal("no alerts found in alerts.yml")
	}
	for _, a := range alerts {
		name := a[1]
		if !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("%s has no promtool unit test in alerts_test.yml", name)
		}
		want := "runbook-" + strings.ToLower(name)
		if !strings.Contains(rules, `runbook_url: "docs/operations.md#`+want+`"`) {
			t.Errorf("%s: no runbook_url docs/operations.md#%s", name, want)
		}
		if !anchors[want] {
			t.Errorf("%s: docs/operations.md has no heading with anchor #%s (e.g. \"### Runbook: %s\")", name, want, name)
		}
	}
}

// anchor is the fragment GitHub gives a Markdown heading.
func anchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every quotehub_* metric the alerts and the dashboard read is one the code
// exports: a renamed metric would leave a silent panel or an alert that
// can never fire.
func TestQueriesNameExportedMetrics(t *testing.T) {
	exported := map[string]bool{}
	name := regexp.MustCompile(`"(quotehub_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			for _, m := range name.FindAllStringSubmatch(read(t, path), -1) {
				exported[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(read(t, "grafana/dashboards/quotehub.json")), &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	queries := []string{read(t, "prometheus/alerts.yml")}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	used := regexp.MustCompile(`quotehub_[a-z0-9_]+`)
	var missing []string
	for _, q := range queries {
		for _, m := range used.FindAllString(q, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
			if !exported[base] && !exported[m] && !slices.Contains(missing, m) {
				missing = append(missing, m)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("queries read metrics the code does not export: %v", missing)
	}
	if len(exported) < 10 {
		t.Fatalf("found only %d exported metric names; the scan is broken", len(exported))
	}
}

// docker-compose accepts the stack, and refuses a broken one (so the check
// can fail).
func TestComposeConfig(t *testing.T) {
	bin := tool(t, "docker-compose")
	check := func(file string) ([]byte, error) {
		cmd := exec.Command(bin, "-f", file, "config", "-q")
		cmd.Dir = ".."
		return cmd.CombinedOutput()
	}
	if out, err := check("docker-compose.yml"); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	broken := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(broken, []byte(strings.Replace(read(t, "../docker-compose.yml"), "services:", "services:\n  bad:\n    image: [1, 2]\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := check(broken); err == nil {
		t.Error("docker-compose config accepted a service whose image is a list")
	}
	// Every file the stack mounts from the repository exists.
	for _, m := range regexp.MustCompile(`- (\./[^:]+):`).FindAllStringSubmatch(read(t, "../docker-compose.yml"), -1) {
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("docker-compose.yml mounts %s: %v", m[1], err)
		}
	}
}

// The compose stack loads the rules the tests check.
func TestComposeMountsTheRules(t *testing.T) {
	compose := read(t, "../docker-compose.yml")
	for _, want := range []string{"./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml", "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml"} {
		if !strings.Contains(compose, want) {
			t.Errorf("docker-compose.yml does not mount %s", want)
		}
	}
}
