package jobs_test

import (
	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/service"
)

// The queue is what the REST service runs on.
var _ service.Backend = (*jobs.Queue)(nil)
