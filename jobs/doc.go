// Package jobs is the task queue of ostask's service: tasks as durable
// records with an event log, run by workers on River
// (github.com/riverqueue/river). A task's row and its River job are
// inserted in one transaction; a worker runs the task's flow through the
// durable store under a lease and a fencing epoch, and a dead worker's
// tasks are resumed by another.
//
// This file set starts with the types shared by the queue, the REST
// service and its clients (types.go).
package jobs
