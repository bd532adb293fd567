package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEveryVariable keeps README's configuration table in
// step with the variables Lockbox reads.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		row := "| `" + v.Name + "` | "
		if v.Default != "" {
			row += "`" + v.Default + "`"
		}
		if !strings.Contains(string(b), row) {
			t.Errorf("README.md has no configuration row starting %q", row)
		}
	}
}
