package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PullAttempts is how often a pull is tried, 2 s, 4 s, ... apart.
const PullAttempts = 3

// Puller is what EnsureImage needs of the engine.
type Puller interface {
	ImagePresent(ctx context.Context, ref string) (bool, error)
	Pull(ctx context.Context, ref string) error
}

// EnsureImage pulls the image unless it is on the host, trying attempts times, 2 s, 4 s, ...
// apart; once when the registry refused the login (ErrPullRefused). The error says how often it
// tried and the last reason.
func EnsureImage(ctx context.Context, eng Puller, image string, attempts int, sleep func(context.Context, time.Duration) error, log func(string, ...any)) error {
	present, err := eng.ImagePresent(ctx, image)
	if err != nil {
		return err
	}
	if present {
		return nil
	}
	var last error
	for i := 1; i <= attempts; i++ {
		if last = eng.Pull(ctx, image); last == nil {
			return nil
		}
		if errors.Is(last, ErrPullRefused) {
			return fmt.Errorf("%s was not pulled: %w", image, last)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s was not pulled: %w", image, context.Cause(ctx))
		}
		if i < attempts {
			log("pull %s failed (attempt %d of %d); retrying", image, i, attempts)
			if err := sleep(ctx, time.Duration(2*i)*time.Second); err != nil {
				return fmt.Errorf("%s was not pulled: %w", image, err)
			}
		}
	}
	return fmt.Errorf("%s could not be pulled after %d attempts: %v", image, attempts, last)
}
