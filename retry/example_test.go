package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ostask/ostask/retry"
)

// noWait makes the examples instant; real callers omit WithSleep.
func noWait(waits *[]time.Duration) retry.Option {
	return retry.WithSleep(func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return ctx.Err()
	})
}

func ExampleDo() {
	policy := retry.Policy{MaxAttempts: 4, Initial: time.Second, Max: 10 * time.Second, Multiplier: 2}
	var waits []time.Duration
	err := retry.Do(context.Background(), policy, func(ctx context.Context, attempt int) error {
		if attempt < 3 {
			return errors.New("server went to ERROR")
		}
		return nil
	}, noWait(&waits))
	fmt.Println(err, waits)
	// Output:
	// <nil> [1s 2s]
}

func ExampleDoValue() {
	var waits []time.Duration
	id, err := retry.DoValue(context.Background(), retry.DefaultPolicy(), func(ctx context.Context, attempt int) (string, error) {
		return fmt.Sprintf("srv-%d", attempt), nil
	}, noWait(&waits))
	fmt.Println(id, err)
	// Output:
	// srv-1 <nil>
}

func ExampleWithBetween() {
	errFault := errors.New("No valid host was found")
	policy := retry.Policy{MaxAttempts: 3, Initial: time.Second, Max: time.Second, Multiplier: 1}
	var waits []time.Duration
	err := retry.Do(context.Background(), policy, func(ctx context.Context, attempt int) error {
		fmt.Println("create, attempt", attempt)
		return errFault
	}, retry.WithBetween(func(ctx context.Context, attempt int, err error) error {
		fmt.Println("delete the wreck of attempt", attempt)
		return nil
	}), noWait(&waits))

	var exhausted *retry.ExhaustedError
	fmt.Println(errors.As(err, &exhausted), len(exhausted.Attempts), errors.Is(err, errFault))
	// Output:
	// create, attempt 1
	// delete the wreck of attempt 1
	// create, attempt 2
	// delete the wreck of attempt 2
	// create, attempt 3
	// true 3 true
}

func ExamplePermanent() {
	errQuota := errors.New("quota exceeded")
	calls := 0
	err := retry.Do(context.Background(), retry.DefaultPolicy(), func(ctx context.Context, attempt int) error {
		calls++
		return retry.Permanent(errQuota) // a 403 will not get better
	})
	fmt.Println(calls, err, errors.Is(err, errQuota))
	// Output:
	// 1 quota exceeded true
}

func ExampleRetryAfter() {
	errLimited := errors.New("429 Too Many Requests")
	var waits []time.Duration
	_ = retry.Do(context.Background(), retry.Policy{MaxAttempts: 2, Initial: time.Second, Max: time.Second, Multiplier: 1},
		func(ctx context.Context, attempt int) error {
			if attempt == 1 {
				return retry.RetryAfter(errLimited, 7*time.Second) // from the Retry-After header
			}
			return nil
		}, noWait(&waits))
	fmt.Println(waits)
	// Output:
	// [7s]
}

func ExampleWithClassifier() {
	errBadRequest := errors.New("400 Bad Request")
	calls := 0
	err := retry.Do(context.Background(), retry.DefaultPolicy(), func(ctx context.Context, attempt int) error {
		calls++
		return errBadRequest
	}, retry.WithClassifier(func(err error) bool { return !errors.Is(err, errBadRequest) }))
	fmt.Println(calls, err)
	// Output:
	// 1 400 Bad Request
}

func ExamplePolicy_Validate() {
	err := retry.Policy{MaxAttempts: 3, Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: 1.5}.Validate()
	var pe *retry.PolicyError
	fmt.Println(errors.Is(err, retry.ErrInvalidPolicy), errors.As(err, &pe), pe.Field)
	// Output:
	// true true Jitter
}
