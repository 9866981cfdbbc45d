// Package storetest is the conformance suite of flow stores: Storage checks
// the engine.Storage contract (run it against engine.Memory too), DB checks
// a store.DB built on a driver (catalogue, fencing, batches, encoding,
// secrets, corrupt rows, schema versions). Every driver's tests call both.
//
//	func TestConformance(t *testing.T) {
//		storetest.DB(t, storetest.Harness{Open: openFresh, Reopen: reopen, Exec: execSQL, Dump: dump})
//	}
package storetest
