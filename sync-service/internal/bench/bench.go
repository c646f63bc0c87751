// Package bench is sync-service's benchmark (sync-service bench).
package bench

import (
	"context"
	"errors"
	"io"
)

// Main runs the benchmark.
func Main(ctx context.Context, args []string, out io.Writer) error {
	return errors.New("not yet")
}
