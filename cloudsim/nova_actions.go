package cloudsim

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

// walkPlan describes the background part of a server action: the
// task_states it walks through (the first is set at once, each lasts d),
// and what success, a silent rollback and an error do at the end.
type walkPlan struct {
	tasks []string
	d     time.Duration
	// failAfter is how many task states are walked before a rollback or
	// error lands; 0 means after all of them.
	failAfter int
	onTask    func(i int, now time.Time) // after task i is set
	done      func(now time.Time)
	undo      func(now time.Time)             // rollback: back to the start state, no fault
	fail      func(now time.Time, msg string) // error; nil = ERROR with a fault
	errMsg    string
}

// runPlan starts p on sv under outcome o. Callers hold s.mu.
func (s *Sim) runPlan(sv *server, a *instanceAction, ev *instanceEvent, o outcome, p walkPlan, now time.Time) {
	if len(p.tasks) > 0 {
		s.setTask(sv, p.tasks[0], now)
		if p.onTask != nil {
			p.onTask(0, now)
		}
	}
	n := len(p.tasks)
	stop := n
	if (o.kind == FaultError || o.kind == FaultRollback) && p.failAfter > 0 && p.failAfter < n {
		stop = p.failAfter
	}
	var steps []step
	for i := 1; i < stop; i++ {
		i := i
		steps = append(steps, step{D: p.d, Fn: func(now time.Time) {
			s.setTask(sv, p.tasks[i], now)
			if p.onTask != nil {
				p.onTask(i, now)
			}
		}})
	}
	msg := o.message
	if msg == "" {
		msg = p.errMsg
	}
	switch o.kind {
	case FaultHang:
	case FaultRollback:
		steps = append(steps, step{D: p.d, Fn: func(now time.Time) {
			s.endEvent(a, ev, false, msg, now)
			s.endOpenEvents(a, false, msg, now)
			p.undo(now)
			sv.TaskState = ""
			s.touchServer(sv, now)
		}})
	case FaultError:
		steps = append(steps, step{D: p.d, Fn: func(now time.Time) {
			s.endEvent(a, ev, false, msg, now)
			s.endOpenEvents(a, false, msg, now)
			if p.fail != nil {
				p.fail(now, msg)
				sv.TaskState = ""
				s.touchServer(sv, now)
				return
			}
			s.failServer(sv, msg, "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 10817, in _error_out_instance_on_exception\n    yield\nnova.exception.NovaException: "+msg+"\n", now)
		}})
	default:
		steps = append(steps, step{D: p.d, Fn: func(now time.Time) {
			p.done(now)
			sv.TaskState = ""
			s.endEvent(a, ev, true, "", now)
			s.endOpenEvents(a, true, "", now)
			s.touchServer(sv, now)
		}})
	}
	s.walk(&sv.resBase, steps...)
}

// serverAction dispatches POST /servers/{id}/action on the body's key.
func (s *Sim) serverAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	body, e := decodeObject(r)
	if e != nil {
		return e
	}
	if len(body) == 0 {
		return errf(400, "Malformed request body")
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	name := ""
	for _, k := range keys {
		if _, ok := actionHandlers[k]; ok {
			name = k
			break
		}
	}
	if name == "" {
		return errf(400, "There is no such action: %s", keys[0])
	}
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), false)
	if e != nil {
		return e
	}
	return actionHandlers[name](s, &actionCall{w: w, r: r, rc: rc, sv: sv, raw: body[name], now: s.clock.Now()})
}

type actionCall struct {
	w   http.ResponseWriter
	r   *http.Request
	rc  *reqCtx
	sv  *server
	raw json.RawMessage
	now time.Time
}

var actionHandlers map[string]func(*Sim, *actionCall) error

func init() {
	actionHandlers = map[string]func(*Sim, *actionCall) error{
		"reboot":         (*Sim).actReboot,
		"os-stop":        (*Sim).actStop,
		"os-start":       (*Sim).actStart,
		"resize":         (*Sim).actResize,
		"confirmResize":  (*Sim).actConfirmResize,
		"revertResize":   (*Sim).actRevertResize,
		"migrate":        (*Sim).actMigrate,
		"os-migrateLive": (*Sim).actLiveMigrate,
		"createImage":    (*Sim).actCreateImage,
		"createBackup":   (*Sim).actCreateBackup,
		"lock":           (*Sim).actLock,
		"unlock":         (*Sim).actUnlock,
	}
}

// admit runs the policy and state checks, then the fault plan's request
// level decision. Callers hold s.mu.
func (s *Sim) admit(c *actionCall, api string, op Op, adminPolicy string, vms, tasks []string) (outcome, *apiError) {
	if adminPolicy != "" && !c.rc.isAdmin() {
		return outcome{}, errf(403, "Policy doesn't allow %s to be performed.", adminPolicy)
	}
	if e := checkStateAs(c.rc, c.sv, api, vms, tasks); e != nil {
		return outcome{}, e
	}
	o := s.decide(op, c.sv.Name)
	return o, scriptedAPIFault(o, c.rc)
}

// accepted finishes an action call: the lose-response fault, then the code.
func accepted(c *actionCall, o outcome, code int) error {
	if o.kind == FaultLoseResponse {
		c.rc.LoseResponse()
	}
	c.w.WriteHeader(code)
	return nil
}

func (s *Sim) actReboot(c *actionCall) error {
	if jsonKind(c.raw) != "object" {
		return errType("reboot", c.raw, "object")
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(c.raw, &m)
	if _, ok := m["type"]; !ok {
		return errRequired("reboot", c.raw, "type")
	}
	typ, _, e := stringField(m, "type", false)
	if e != nil {
		return e
	}
	hard := false
	switch strings.ToUpper(typ) {
	case "HARD":
		hard = true
	case "SOFT":
	default:
		return errf(400, "Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", typ, typ)
	}
	vms, tasks := []string{vmActive}, []string(nil)
	names := []string{"rebooting", "reboot_pending", "reboot_started"}
	if hard {
		vms = []string{vmActive, vmStopped, vmPaused, vmSuspended, vmError}
		tasks = []string{"", "rebooting", "reboot_pending", "reboot_started", "rebooting_hard", "reboot_pending_hard",
			"reboot_started_hard", "pausing", "unpausing", "suspending", "resuming"}
		names = []string{"rebooting_hard", "reboot_pending_hard", "reboot_started_hard"}
	}
	o, e := s.admit(c, "reboot", OpServerReboot, "", vms, tasks)
	if e != nil {
		return e
	}
	sv := c.sv
	a := s.recordAction(sv, c.rc, "reboot", c.now)
	ev := s.beginEvent(sv, a, "compute_reboot_instance", c.now)
	prevVM, prevPower := sv.VMState, sv.PowerState
	if hard && sv.VMState != vmActive {
		// Nova resets the vm_state for a hard reboot so the status reads HARD_REBOOT.
		sv.VMState = vmActive
	}
	s.runPlan(sv, a, ev, o, walkPlan{
		tasks: names, d: s.timing.Reboot / 3, errMsg: "Failed to reboot instance: internal error: qemu unexpectedly closed the monitor",
		done: func(now time.Time) { sv.VMState, sv.PowerState = vmActive, 1 },
		undo: func(now time.Time) { sv.VMState, sv.PowerState = prevVM, prevPower },
	}, c.now)
	return accepted(c, o, 202)
}

func (s *Sim) actStop(c *actionCall) error {
	o, e := s.admit(c, "stop", OpServerStop, "", []string{vmActive, vmError}, nil)
	if e != nil {
		return e
	}
	sv := c.sv
	a := s.recordAction(sv, c.rc, "stop", c.now)
	ev := s.beginEvent(sv, a, "compute_stop_instance", c.now)
	s.runPlan(sv, a, ev, o, walkPlan{
		tasks: []string{"powering-off"}, d: s.timing.Stop, errMsg: "Failed to power off instance: Timed out during operation: cannot acquire state change lock",
		done: func(now time.Time) { sv.VMState, sv.PowerState = vmStopped, 4 },
		undo: func(now time.Time) {},
	}, c.now)
	return accepted(c, o, 202)
}

func (s *Sim) actStart(c *actionCall) error {
	o, e := s.admit(c, "start", OpServerStart, "", []string{vmStopped}, nil)
	if e != nil {
		return e
	}
	sv := c.sv
	a := s.recordAction(sv, c.rc, "start", c.now)
	ev := s.beginEvent(sv, a, "compute_start_instance", c.now)
	s.runPlan(sv, a, ev, o, walkPlan{
		tasks: []string{"powering-on"}, d: s.timing.Start, errMsg: "Failed to power on instance: internal error: process exited while connecting to monitor",
		done: func(now time.Time) { sv.VMState, sv.PowerState = vmActive, 1 },
		undo: func(now time.Time) {},
	}, c.now)
	return accepted(c, o, 202)
}

var resizeTasks = []string{"resize_prep", "resize_migrating", "resize_migrated", "resize_finish"}

// otherHost picks a host other than the current one.
func (s *Sim) otherHost(cur string) string {
	for {
		h := computeHosts[s.rng.IntN(len(computeHosts))]
		if h != cur {
			return h
		}
	}
}

// startMigration runs resize or cold migrate: RESIZE/resize_* then
// VERIFY_RESIZE. A rollback lands after resize_prep (the scheduler found
// no host), silently. The events are Nova's, host by host: the
// conductor's migrate_server and cold_migrate while it schedules,
// prep_resize on the destination, resize_instance on the source, and
// finish_resize on the destination.
func (s *Sim) startMigration(c *actionCall, o outcome, action, newFlavor, host string) {
	sv := c.sv
	a := s.recordAction(sv, c.rc, action, c.now)
	conductor := s.beginEventOn(a, "conductor_migrate_server", "", c.now)
	cold := s.beginEventOn(a, "cold_migrate", "", c.now)
	sv.nova.PrevVMState = sv.VMState
	prev, source := sv.VMState, sv.Host
	if host == "" {
		host = s.otherHost(sv.Host)
	}
	var resize *instanceEvent
	s.runPlan(sv, a, nil, o, walkPlan{
		tasks: resizeTasks, d: s.timing.ResizeStep, failAfter: 1,
		errMsg: defaultNoValidHostFault,
		onTask: func(i int, now time.Time) {
			switch i {
			case 1: // resize_migrating: scheduled, prepared, the source copies
				s.endEvent(a, cold, true, "", now)
				s.endEvent(a, conductor, true, "", now)
				s.endEvent(a, s.beginEventOn(a, "compute_prep_resize", host, now), true, "", now)
				resize = s.beginEventOn(a, "compute_resize_instance", source, now)
			case 2: // resize_migrated: the destination finishes
				s.endEvent(a, resize, true, "", now)
				s.beginEventOn(a, "compute_finish_resize", host, now)
			}
		},
		done: func(now time.Time) {
			sv.VMState = vmResized
			sv.OldFlavorID = sv.FlavorID
			sv.FlavorID = newFlavor
			sv.Host = host
			sv.nova.MigrationStatus = "finished"
		},
		undo: func(now time.Time) { sv.VMState = prev },
	}, c.now)
}

func (s *Sim) actResize(c *actionCall) error {
	if jsonKind(c.raw) != "object" {
		return errType("resize", c.raw, "object")
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(c.raw, &m)
	for k := range m {
		if k != "flavorRef" && k != "OS-DCF:diskConfig" {
			return errAdditional("resize", c.raw, k)
		}
	}
	raw, ok := m["flavorRef"]
	if !ok {
		return errRequired("resize", c.raw, "flavorRef")
	}
	var ref string
	switch jsonKind(raw) {
	case "string":
		_ = json.Unmarshal(raw, &ref)
	case "number":
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return errType("flavorRef", raw, "string, integer")
		}
		ref = n.String()
	default:
		return errType("flavorRef", raw, "string, integer")
	}
	ref = lastPathSegment(ref)
	sv := c.sv
	fl := s.flavorByID(ref)
	if fl == nil {
		return errf(400, "Unable to locate requested flavor.")
	}
	if e := checkStateAs(c.rc, sv, "resize", []string{vmActive, vmStopped}, nil); e != nil {
		return e
	}
	if fl.ID == sv.FlavorID {
		return errf(400, "When resizing, instances must change flavor!")
	}
	if cur := s.flavorByID(sv.FlavorID); cur != nil && sv.ImageRef != "" && fl.Disk < cur.Disk {
		return errf(400, "Resize error: Unable to resize disk down.")
	}
	if sv.ImageRef != "" && fl.Disk == 0 && !c.rc.isAdmin() {
		return errf(403, "Only volume-backed servers are allowed for flavors with zero disk.")
	}
	o, e := s.admit(c, "resize", OpServerResize, "", []string{vmActive, vmStopped}, nil)
	if e != nil {
		return e
	}
	s.startMigration(c, o, "resize", fl.ID, "")
	return accepted(c, o, 202)
}

func (s *Sim) actMigrate(c *actionCall) error {
	host := ""
	switch jsonKind(c.raw) {
	case "null":
	case "object":
		var m map[string]json.RawMessage
		_ = json.Unmarshal(c.raw, &m)
		for k := range m {
			if k != "host" || !c.rc.MV.AtLeast(2, 56) {
				return errAdditional("migrate", c.raw, k)
			}
		}
		h, _, e := stringField(m, "host", true)
		if e != nil {
			return e
		}
		host = h
	default:
		return errType("migrate", c.raw, "object, null")
	}
	if host != "" && !hasString(computeHosts, host) {
		if !c.rc.isAdmin() {
			return errf(403, "Policy doesn't allow os_compute_api:os-migrate-server:migrate to be performed.")
		}
		return errf(400, "Compute host %s could not be found.", host)
	}
	o, e := s.admit(c, "migrate", OpServerMigrate, "os_compute_api:os-migrate-server:migrate", []string{vmActive, vmStopped}, nil)
	if e != nil {
		return e
	}
	if host != "" && host == c.sv.Host {
		return errf(400, "No valid host was found. Unable to migrate instance %s to current host (%s).", c.sv.ID, host)
	}
	s.startMigration(c, o, "migrate", c.sv.FlavorID, host)
	return accepted(c, o, 202)
}

// finishedMigration is Nova's lookup of the migration in status
// "finished": confirm and revert need one.
func finishedMigration(sv *server) *apiError {
	if sv.nova.MigrationStatus != "finished" {
		return errf(400, "Instance has not been resized.")
	}
	return nil
}

func (s *Sim) actConfirmResize(c *actionCall) error {
	if e := checkStateAs(c.rc, c.sv, "confirmResize", []string{vmResized}, nil); e != nil {
		return e
	}
	if e := finishedMigration(c.sv); e != nil {
		return e
	}
	o, e := s.admit(c, "confirmResize", OpServerConfirm, "", []string{vmResized}, nil)
	if e != nil {
		return e
	}
	sv := c.sv
	a := s.recordAction(sv, c.rc, "confirmResize", c.now)
	ev := s.beginEvent(sv, a, "compute_confirm_resize", c.now)
	sv.nova.MigrationStatus = "confirming"
	// Confirm sets no task_state: the server reads VERIFY_RESIZE/null
	// until the compute host is done.
	s.runPlan(sv, a, ev, o, walkPlan{
		d: s.timing.ConfirmResize, errMsg: "Failed to confirm resize: error cleaning up the source host",
		done: func(now time.Time) {
			sv.VMState = sv.nova.PrevVMState
			if sv.VMState == "" {
				sv.VMState = vmActive
			}
			sv.OldFlavorID = ""
			sv.nova.MigrationStatus = ""
		},
		undo: func(now time.Time) { sv.nova.MigrationStatus = "finished" },
	}, c.now)
	return accepted(c, o, 204)
}

func (s *Sim) actRevertResize(c *actionCall) error {
	if e := checkStateAs(c.rc, c.sv, "revertResize", []string{vmResized}, nil); e != nil {
		return e
	}
	if e := finishedMigration(c.sv); e != nil {
		return e
	}
	o, e := s.admit(c, "revertResize", OpServerRevert, "", []string{vmResized}, nil)
	if e != nil {
		return e
	}
	sv := c.sv
	a := s.recordAction(sv, c.rc, "revertResize", c.now)
	ev := s.beginEvent(sv, a, "compute_revert_resize", c.now)
	sv.nova.MigrationStatus = "reverting"
	source := s.otherHost(sv.Host)
	s.runPlan(sv, a, nil, o, walkPlan{
		tasks: []string{"resize_reverting"}, d: s.timing.RevertResize,
		errMsg: "Failed to revert resize: instance disk not found on the source host",
		done: func(now time.Time) {
			// The destination's revert_resize hands over to the source's
			// finish_revert_resize.
			s.endEvent(a, ev, true, "", now)
			s.beginEventOn(a, "compute_finish_revert_resize", source, now)
			sv.VMState = sv.nova.PrevVMState
			if sv.VMState == "" {
				sv.VMState = vmActive
			}
			if sv.OldFlavorID != "" {
				sv.FlavorID = sv.OldFlavorID
			}
			sv.OldFlavorID = ""
			sv.Host = source
			sv.nova.MigrationStatus = ""
		},
		undo: func(now time.Time) { sv.nova.MigrationStatus = "finished" },
	}, c.now)
	return accepted(c, o, 202)
}

func (s *Sim) actLiveMigrate(c *actionCall) error {
	if jsonKind(c.raw) != "object" {
		return errType("os-migrateLive", c.raw, "object")
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(c.raw, &m)
	allowed := map[string]bool{"host": true, "block_migration": true}
	if !c.rc.MV.AtLeast(2, 25) {
		allowed["disk_over_commit"] = true
	}
	if c.rc.MV.AtLeast(2, 30) && !c.rc.MV.AtLeast(2, 68) {
		allowed["force"] = true
	}
	for k := range m {
		if !allowed[k] {
			return errAdditional("os-migrateLive", c.raw, k)
		}
	}
	for _, k := range []string{"block_migration", "host"} {
		if _, ok := m[k]; !ok {
			return errRequired("os-migrateLive", c.raw, k)
		}
	}
	bm := m["block_migration"]
	switch jsonKind(bm) {
	case "boolean":
	case "string":
		var v string
		_ = json.Unmarshal(bm, &v)
		if v != "auto" || !c.rc.MV.AtLeast(2, 25) {
			return errf(400, "Invalid input for field/attribute block_migration. Value: %s. '%s' is not one of [True, False, 'auto']", v, v)
		}
	default:
		return errType("block_migration", bm, "boolean")
	}
	host, _, e := stringField(m, "host", true)
	if e != nil {
		return e
	}
	o, e := s.admit(c, "os-migrateLive", OpServerLiveMigrate, "os_compute_api:os-migrate-server:migrate_live", []string{vmActive, vmPaused}, nil)
	if e != nil {
		return e
	}
	if host != "" && !hasString(computeHosts, host) {
		return errf(400, "Compute host %s could not be found.", host)
	}
	sv := c.sv
	if host == sv.Host && host != "" {
		return errf(400, "Unable to migrate instance (%s) to current host (%s).", sv.ID, host)
	}
	a := s.recordAction(sv, c.rc, "live-migration", c.now)
	if host == "" {
		host = s.otherHost(sv.Host)
	}
	source := sv.Host
	// Nova's events: the conductor's live_migrate_instance around the
	// destination's and source's checks, then pre_live_migration on the
	// destination, live_migration on the source, and
	// post_live_migration_at_destination.
	s.beginEventOn(a, "conductor_live_migrate_instance", "", c.now)
	s.endEvent(a, s.beginEventOn(a, "compute_check_can_live_migrate_destination", host, c.now), true, "", c.now)
	s.endEvent(a, s.beginEventOn(a, "compute_check_can_live_migrate_source", source, c.now), true, "", c.now)
	s.endEvent(a, s.beginEventOn(a, "compute_pre_live_migration", host, c.now), true, "", c.now)
	s.beginEventOn(a, "compute_live_migration", source, c.now)
	s.runPlan(sv, a, nil, o, walkPlan{
		tasks: []string{"migrating"}, d: s.timing.LiveMigrate,
		errMsg: "Live migration failed: operation failed: migration job: unexpectedly failed",
		done: func(now time.Time) {
			s.beginEventOn(a, "compute_post_live_migration_at_destination", host, now)
			sv.Host = host
		},
		undo: func(now time.Time) {},
	}, c.now)
	return accepted(c, o, 202)
}

func (s *Sim) actLock(c *actionCall) error {
	a := s.recordAction(c.sv, c.rc, "lock", c.now)
	s.endEvent(a, s.beginEventOn(a, "api_lock", "", c.now), true, "", c.now)
	c.sv.Locked = true
	s.touchServer(c.sv, c.now)
	c.w.WriteHeader(202)
	return nil
}

func (s *Sim) actUnlock(c *actionCall) error {
	a := s.recordAction(c.sv, c.rc, "unlock", c.now)
	s.endEvent(a, s.beginEventOn(a, "api_unlock", "", c.now), true, "", c.now)
	c.sv.Locked = false
	s.touchServer(c.sv, c.now)
	c.w.WriteHeader(202)
	return nil
}

// ---- snapshots and backups ----

type imageReq struct {
	name, backupType string
	rotation         int
	metadata         map[string]string
}

func parseImageReq(key string, raw json.RawMessage, backup bool) (*imageReq, *apiError) {
	if jsonKind(raw) != "object" {
		return nil, errType(key, raw, "object")
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	req := &imageReq{}
	allowed := map[string]bool{"name": true, "metadata": true}
	required := []string{"name"}
	if backup {
		allowed["backup_type"], allowed["rotation"] = true, true
		required = []string{"name", "backup_type", "rotation"}
	}
	for k := range m {
		if !allowed[k] {
			return nil, errAdditional(key, raw, k)
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, errRequired(key, raw, k)
		}
	}
	var e *apiError
	if req.name, _, e = stringField(m, "name", false); e != nil {
		return nil, e
	}
	if req.name == "" || len(req.name) > 255 {
		return nil, errf(400, "Invalid input for field/attribute name. Value: %s. '%s' is too short", req.name, req.name)
	}
	if req.metadata, e = stringMap(m, "metadata"); e != nil {
		return nil, e
	}
	if backup {
		if req.backupType, _, e = stringField(m, "backup_type", false); e != nil {
			return nil, e
		}
		n, ok := intValue(m["rotation"])
		if !ok || n < 0 {
			return nil, errType("rotation", m["rotation"], "integer, string")
		}
		req.rotation = n
	}
	return req, nil
}

func (s *Sim) actCreateImage(c *actionCall) error { return s.snapshot(c, false) }

func (s *Sim) actCreateBackup(c *actionCall) error { return s.snapshot(c, true) }

func (s *Sim) snapshot(c *actionCall, backup bool) error {
	key, api, op, action := "createImage", "createImage", OpServerSnapshot, "createImage"
	if backup {
		key, api, op, action = "createBackup", "createBackup", OpServerBackup, "createBackup"
	}
	req, e := parseImageReq(key, c.raw, backup)
	if e != nil {
		return e
	}
	sv := c.sv
	if backup && sv.ImageRef == "" {
		return errf(400, "Backup is not supported for volume-backed instances.")
	}
	o, e := s.admit(c, api, op, "", []string{vmActive, vmStopped, vmPaused, vmSuspended}, nil)
	if e != nil {
		return e
	}
	props := cloneMap(req.metadata)
	if props == nil {
		props = map[string]string{}
	}
	props["instance_uuid"] = sv.ID
	props["user_id"] = sv.UserID
	// Nova's compute API stamps who took the snapshot and with which roles
	// (owner_user_name, owner_project_name, boot_roles).
	if tok := c.rc.Token; tok != nil {
		if u := s.users[tok.UserID]; u != nil {
			props["owner_user_name"] = u.Name
		}
		if p := s.projects[tok.ProjectID]; p != nil {
			props["owner_project_name"] = p.Name
		}
		props["boot_roles"] = strings.Join(tok.Roles, ",")
	}
	props["image_type"] = "snapshot"
	if backup {
		props["image_type"] = "backup"
		props["backup_type"] = req.backupType
	}
	if sv.ImageRef != "" {
		props["base_image_ref"] = sv.ImageRef
	}
	a := s.recordAction(sv, c.rc, action, c.now)
	var im *image
	if sv.ImageRef == "" {
		// Volume-backed: the image only describes volume snapshots and is
		// active at once.
		props["root_device_name"] = "/dev/vda"
		props["bdm_v2"] = "True"
		props["block_device_mapping"] = volumeBDMProperty(sv)
		im = s.newImageLocked(req.name, sv.ProjectID, "active", props, c.now)
	} else {
		im = s.newImageLocked(req.name, sv.ProjectID, "queued", props, c.now)
		if fl := s.flavorByID(sv.FlavorID); fl != nil {
			im.MinDisk = fl.Disk
		}
		if base := s.liveImage(sv.ImageRef); base != nil {
			im.MinRAM = base.MinRAM
			im.DiskFormat, im.ContainerFormat = base.DiskFormat, base.ContainerFormat
		}
		event, tasks, savingAt := "compute_snapshot_instance", []string{"image_snapshot_pending", "image_snapshot", "image_pending_upload", "image_uploading"}, 1
		if backup {
			event, tasks, savingAt = "compute_backup_instance", []string{"image_backup", "image_pending_upload", "image_uploading"}, 1
		}
		ev := s.beginEvent(sv, a, event, c.now)
		drop := func(now time.Time, msg string) {
			if !im.Deleted {
				s.removeImageLocked(im)
			}
		}
		s.runPlan(sv, a, ev, o, walkPlan{
			tasks: tasks, d: s.timing.SnapshotStep, errMsg: "Failed to snapshot instance: libvirt error during snapshot extraction",
			onTask: func(i int, now time.Time) {
				if i == savingAt && !im.Deleted {
					s.setImageStatus(im, "saving", now)
				}
			},
			done: func(now time.Time) {
				if im.Deleted {
					return
				}
				im.Size = 21430272
				s.setImageStatus(im, "active", now)
				if backup {
					s.rotateBackups(sv.ID, req.backupType, req.rotation)
				}
			},
			undo: func(now time.Time) { drop(now, "") },
			fail: drop,
		}, c.now)
	}
	if o.kind == FaultLoseResponse {
		c.rc.LoseResponse()
	}
	if c.rc.MV.AtLeast(2, 45) {
		writeJSON(c.w, 202, map[string]any{"image_id": im.ID})
		return nil
	}
	// Nova builds the Location from the image endpoint without a version
	// (glance.generate_image_url), and webob labels the empty body text/html.
	c.w.Header().Set("Location", s.linkBase(c.r)+imagePrefix+"/images/"+im.ID)
	c.w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	c.w.WriteHeader(202)
	return nil
}

// volumeBDMProperty is the block_device_mapping image property of a
// volume-backed snapshot (Nova stores a JSON list).
func volumeBDMProperty(sv *server) string {
	var list []map[string]any
	for _, bv := range sv.Volumes {
		if bv.VolumeID == "" {
			continue
		}
		bi := any(nil)
		if bv.Boot {
			bi = 0
		}
		list = append(list, map[string]any{"source_type": "snapshot", "destination_type": "volume",
			"device_name": bv.Device, "boot_index": bi, "delete_on_termination": bv.DeleteOnTerm})
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// rotateBackups keeps the newest rotation backups of one server and type,
// like Nova's _rotate_backups. Callers hold s.mu.
func (s *Sim) rotateBackups(serverID, backupType string, rotation int) {
	var backups []*image
	for _, im := range s.imageOrder {
		p := im.Properties
		if !im.Deleted && p["image_type"] == "backup" && p["instance_uuid"] == serverID && p["backup_type"] == backupType && im.Status == "active" {
			backups = append(backups, im)
		}
	}
	sort.Slice(backups, func(i, j int) bool { return backups[i].seq > backups[j].seq })
	for i := rotation; i < len(backups); i++ {
		s.removeImageLocked(backups[i])
	}
}
