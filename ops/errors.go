package ops

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind names the kind of resource an operation acts on.
type Kind string

// Resource kinds.
const (
	KindServer Kind = "server"
	KindVolume Kind = "volume"
	KindImage  Kind = "image"
)

// Sentinels for conditions; the typed errors below match them with errors.Is.
var (
	// ErrFault: the resource went to ERROR or an error_* status.
	ErrFault = errors.New("operation failed in the cloud")
	// ErrTimeout: the operation did not finish before its deadline.
	ErrTimeout = errors.New("operation timed out")
	// ErrDeleted: the resource vanished while being created or changed.
	ErrDeleted = errors.New("resource vanished")
	// ErrRolledBack: the cloud undid the change silently (a resize or
	// migrate that went back to the original state with no fault).
	ErrRolledBack = errors.New("operation rolled back silently")
	// ErrMonitorClosed: the Cloud was closed while the operation was pending,
	// or before the call was made.
	ErrMonitorClosed = errors.New("ostask: cloud closed")
	// ErrInvalidOption: a per-call option makes no sense.
	ErrInvalidOption = errors.New("invalid option")
	// ErrUnresponsive: the cloud did not answer a request in time
	// (Config.ResponseTimeout, or the end of the call's retry budget).
	ErrUnresponsive = errors.New("the cloud did not answer in time")
	// ErrUnknownOutcome: a call failed in a way that may have taken effect
	// (its answer was lost), and ostask could not find out whether it did;
	// it did not send the call again.
	ErrUnknownOutcome = errors.New("the call's outcome is unknown")
)

// FaultError reports a resource that went to ERROR (or error_*), with the
// cloud's own fault message where it gives one.
type FaultError struct {
	Kind      Kind
	ID        string
	Op        string // e.g. "create", "resize"
	Status    string // ERROR, error, error_deleting, ...
	Code      int    // fault code (Nova), 0 if none
	Message   string // fault message; Cinder gives none
	Details   string // fault details (admin only, or code != 500)
	RequestID string // request id of the call that started the operation
}

func (e *FaultError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: status %s", e.Kind, e.ID, e.Op, e.Status)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [%s]", e.RequestID)
	}
	return b.String()
}

// Is matches ErrFault.
func (e *FaultError) Is(target error) bool { return target == ErrFault }

// TimeoutError reports an operation that did not finish in time, with the
// last state the monitor saw.
type TimeoutError struct {
	Kind          Kind
	ID            string
	Op            string
	After         time.Duration
	LastStatus    string // "" if never seen
	LastTaskState string
}

func (e *TimeoutError) Error() string {
	last := e.LastStatus
	if last == "" {
		last = "never seen"
	}
	if e.LastTaskState != "" {
		last += "/" + e.LastTaskState
	}
	return fmt.Sprintf("%s %s %s: timed out after %s (last seen: %s)", e.Kind, e.ID, e.Op, e.After.Round(time.Millisecond), last)
}

// Is matches ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// DeletedError reports a resource that vanished while an operation other
// than delete was waiting on it.
type DeletedError struct {
	Kind       Kind
	ID         string
	Op         string
	LastStatus string
}

func (e *DeletedError) Error() string {
	return fmt.Sprintf("%s %s %s: the resource vanished (last seen: %s)", e.Kind, e.ID, e.Op, orNever(e.LastStatus))
}

// Is matches ErrDeleted.
func (e *DeletedError) Is(target error) bool { return target == ErrDeleted }

// RolledBackError reports a resize, migrate or live migration that the
// cloud undid without a fault; os-instance-actions holds the evidence.
type RolledBackError struct {
	Kind      Kind
	ID        string
	Op        string
	Status    string // where the resource ended up
	RequestID string
	Events    []string // failed instance-action events, "name: traceback/details"
}

func (e *RolledBackError) Error() string {
	s := fmt.Sprintf("%s %s %s: rolled back to %s without a fault", e.Kind, e.ID, e.Op, e.Status)
	if len(e.Events) > 0 {
		s += " (failed events: " + strings.Join(e.Events, "; ") + ")"
	}
	return s
}

// Is matches ErrRolledBack.
func (e *RolledBackError) Is(target error) bool { return target == ErrRolledBack }

// RetriesExhaustedError carries the error of every attempt. errors.Is and
// errors.As look through all of them.
type RetriesExhaustedError struct {
	Op       string
	Attempts []error
}

func (e *RetriesExhaustedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: all %d attempts failed", e.Op, len(e.Attempts))
	for i, a := range e.Attempts {
		fmt.Fprintf(&b, "; attempt %d: %v", i+1, a)
	}
	return b.String()
}

// Unwrap returns every attempt's error.
func (e *RetriesExhaustedError) Unwrap() []error { return e.Attempts }

// CleanupError reports that removing a failed resource failed: the wreck
// of an attempt (between attempts, or after the last), or one an earlier
// run left under the idempotency key. The resource may still exist (ID
// says which).
type CleanupError struct {
	Kind    Kind
	ID      string
	Attempt error // the attempt whose wreck could not be removed; nil for a wreck found under the key
	Err     error // why the cleanup failed
}

func (e *CleanupError) Error() string {
	if e.Attempt == nil {
		return fmt.Sprintf("removing the failed %s %s found under the idempotency key failed: %v", e.Kind, e.ID, e.Err)
	}
	return fmt.Sprintf("cleanup of %s %s failed: %v (after: %v)", e.Kind, e.ID, e.Err, e.Attempt)
}

// Unwrap returns both the attempt's error and the cleanup's.
func (e *CleanupError) Unwrap() []error {
	if e.Attempt == nil {
		return []error{e.Err}
	}
	return []error{e.Attempt, e.Err}
}

// UnresponsiveError reports a request that got no answer in time: the
// cloud accepted the connection (or not) but sent no response headers
// within Config.ResponseTimeout, or the call's retry budget
// (Config.RetryBudget) ended while it waited.
type UnresponsiveError struct {
	Method string
	URL    string
	Waited time.Duration
}

func (e *UnresponsiveError) Error() string {
	// net/http's *url.Error around it names the request already.
	return fmt.Sprintf("no answer after %s", e.Waited.Round(time.Millisecond))
}

// Is matches ErrUnresponsive.
func (e *UnresponsiveError) Is(target error) bool { return target == ErrUnresponsive }

// UnknownOutcomeError reports a call that failed ambiguously (Err: a lost
// answer, a 5xx) and whose check — did it take effect? — failed too
// (CheckErr). The call was not sent again: the resource may or may not
// have changed.
type UnknownOutcomeError struct {
	Err      error
	CheckErr error
}

func (e *UnknownOutcomeError) Error() string {
	return fmt.Sprintf("outcome unknown: %v; and the check whether it took effect failed: %v", e.Err, e.CheckErr)
}

// Is matches ErrUnknownOutcome.
func (e *UnknownOutcomeError) Is(target error) bool { return target == ErrUnknownOutcome }

// Unwrap returns the call's error and the check's.
func (e *UnknownOutcomeError) Unwrap() []error { return []error{e.Err, e.CheckErr} }

func orNever(s string) string {
	if s == "" {
		return "never seen"
	}
	return s
}
