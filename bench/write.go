package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Files written by WriteFiles.
const (
	TableFile   = "bench.md"
	ChartFile   = "bench.svg"
	ResultsFile = "bench.json"
)

// WriteFiles writes the report into dir (created if missing): the table
// as markdown, the chart, and every run's figures as JSON. It returns the
// paths written.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{TableFile, []byte(r.Markdown())},
		{ChartFile, []byte(r.SVG())},
		{ResultsFile, append(js, '\n')},
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
