package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's configuration table true:
// every setting appears with its flag and default.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range settings {
		def := "empty"
		if s.def != "" {
			def = "`" + s.def + "`"
		}
		row := "| `" + s.env + "` | `-" + s.flag + "` | " + def + " |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
	for _, cmd := range []string{"make run", "make test"} {
		if !strings.Contains(readme, cmd) {
			t.Errorf("README.md does not show %q", cmd)
		}
	}
}
