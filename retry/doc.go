// Package retry runs an attempt until it succeeds, with jittered exponential
// backoff between attempts.
//
// A Policy says how often and how patiently; the attempt's errors steer the
// loop: Permanent stops at once, RetryAfter asks for a minimum wait, a
// Classifier decides what else is worth retrying, and a Between hook runs
// before each new attempt (the place to delete a half-built resource).
//
//	err := retry.Do(ctx, retry.DefaultPolicy(), func(ctx context.Context, attempt int) error {
//		return createServer(ctx)
//	}, retry.WithBetween(deleteWreck))
//
// This package knows nothing about OpenStack.
package retry
