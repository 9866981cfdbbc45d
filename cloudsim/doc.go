// Package cloudsim is an embedded OpenStack-compatible cloud: the subsets
// of Keystone v3, Nova v2.1, Cinder v3 and Glance v2 that ostask uses,
// with the same background behaviour real clouds show. Every mutating call
// answers at once (202) and the work walks through Nova's and Cinder's real
// status/task_state sequences on the simulator's own clock, where a seeded
// FaultPlan can make it fail with a fault, hang, roll back silently, or
// make the API itself answer 500/503/429 or drop the connection.
//
//	sim, err := cloudsim.Start(ctx, cloudsim.Config{})
//	if err != nil { ... }
//	defer sim.Close()
//	// point gophercloud (or any OpenStack client) at sim.AuthURL(),
//	// user "demo", password "secret", project "demo", domain "Default",
//	// or write sim.CloudsYAML("ostask-sim") to a file.
//
// With Timing.BuildRequests (on in RealisticTiming) a new server first
// exists only as a Nova build request, with the list quirks real Nova has
// then (a 500 on sort_key=updated_at, unstable marker paging);
// Sim.ScheduleBuildRequest moves one on at a chosen moment.
//
// Like Nova, it publishes versioned notifications at each state change
// (Sim.Notifications in process, Config.Publisher to a broker).
//
// Request counters per route (Sim.Counters, GET /_sim/counters) let tests
// and benchmarks prove how many calls a client made.
package cloudsim
