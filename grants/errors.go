package grants

import (
	"fmt"

	"github.com/lockbox-oss/lockbox/internal/fault"
)

// Error categories callers branch on (aliases of the shared categories).
var (
	ErrInvalid     = fault.ErrInvalid
	ErrForbidden   = fault.ErrForbidden
	ErrNotFound    = fault.ErrNotFound
	ErrConflict    = fault.ErrConflict
	ErrUnavailable = fault.ErrUnavailable
)

var newErr = fault.New

// TransitionError is returned for an action the request's current state
// does not allow. It is an ErrConflict and names the state.
type TransitionError struct {
	Action Action
	State  State
	// AwaitsManager marks a tenant approver's decision on a request the
	// provider's support manager has not approved yet: the state's name
	// alone does not tell them the manager decides first.
	AwaitsManager bool
}

func (e *TransitionError) Error() string {
	if e.AwaitsManager {
		return fmt.Sprintf("cannot %s it yet: the provider's support manager must approve the request first (it is %s)", e.Action, e.State)
	}
	return fmt.Sprintf("cannot %s a request that is %s", e.Action, e.State)
}

// Is makes a TransitionError match ErrConflict.
func (e *TransitionError) Is(target error) bool { return target == ErrConflict }
