package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// updateREADME rewrites README.md's console examples with what the
// commands print now: go test ./cmd/ftlstate -run TestREADME -update-readme
var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's console examples from real runs")

const readmePath = "../../README.md"

// consoleBlock is one ```console block of the README: commands ("$ "
// lines, "\" continuing them) each followed by what it prints.
type consoleBlock struct {
	start, end int // line indexes of the fences
	steps      []consoleStep
}

type consoleStep struct {
	command string   // as written, continuation lines included
	output  []string // the lines shown after it
}

func parseConsoleBlocks(lines []string) []consoleBlock {
	var blocks []consoleBlock
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```console" {
			continue
		}
		b := consoleBlock{start: i}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			line := lines[i]
			if cmd, ok := strings.CutPrefix(line, "$ "); ok {
				for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
					i++
					cmd += "\n" + lines[i]
				}
				b.steps = append(b.steps, consoleStep{command: cmd})
				continue
			}
			if len(b.steps) > 0 {
				s := &b.steps[len(b.steps)-1]
				s.output = append(s.output, line)
			}
		}
		b.end = i
		blocks = append(blocks, b)
	}
	return blocks
}

// What varies from run to run: times, backup names, sizes. Columns are
// compared by their order, not their padding (alignment is tested
// elsewhere).
var readmeNoise = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<time>"},
	{regexp.MustCompile(`\.\d{10}(\.\d+)?\.backup`), ".<unix>.backup"},
	{regexp.MustCompile(`\d+(\.\d)? (B|KiB|MiB)\b`), "<size>"},
	{regexp.MustCompile(` +`), " "},
}

func normalizeREADME(s string) string {
	for _, n := range readmeNoise {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return strings.TrimRight(s, " \n")
}

// TestREADME_ExamplesPrintWhatTheyShow runs every console example of
// README.md with the built binary, each block in a fresh directory, and
// compares what each command prints (stdout and stderr, as a terminal
// would show them) with what the README shows.
func TestREADME_ExamplesPrintWhatTheyShow(t *testing.T) {
	raw, err := os.ReadFile(readmePath)
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	blocks := parseConsoleBlocks(lines)
	require.NotEmpty(t, blocks, "README.md has console examples")
	binDir := filepath.Dir(binary)
	var rewritten []string
	prev := 0
	for _, b := range blocks {
		dir := t.TempDir()
		var out []string
		for _, s := range b.steps {
			got := runShell(t, dir, binDir, s.command)
			if !*updateREADME {
				assert.Equal(t, normalizeREADME(strings.Join(s.output, "\n")), normalizeREADME(got),
					"README.md line %d: $ %s", b.start+1, s.command)
			}
			out = append(out, "$ "+s.command)
			if got != "" {
				out = append(out, strings.Split(strings.TrimRight(got, "\n"), "\n")...)
			}
		}
		rewritten = append(rewritten, lines[prev:b.start+1]...)
		rewritten = append(rewritten, out...)
		prev = b.end
	}
	rewritten = append(rewritten, lines[prev:]...)
	if *updateREADME {
		require.NoError(t, os.WriteFile(readmePath, []byte(strings.Join(rewritten, "\n")), 0o644))
	}
}

// runShell runs command with sh in dir, the built ftlstate first on PATH,
// and returns what it printed on stdout and stderr, interleaved.
func runShell(t *testing.T, dir, binDir, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	env := []string{"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + dir, "TZ=UTC", "LANG=C.UTF-8"}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("$ %s: %v", command, err)
	}
	return out.String()
}
