package cloudsim

// Nova vm_state values.
const (
	vmActive    = "active"
	vmBuilding  = "building"
	vmStopped   = "stopped"
	vmResized   = "resized"
	vmPaused    = "paused"
	vmSuspended = "suspended"
	vmRescued   = "rescued"
	vmError     = "error"
	vmDeleted   = "deleted"
	vmSoftDel   = "soft-delete"
	vmShelved   = "shelved"
	vmShelvedOf = "shelved_offloaded"
)

// serverStatus maps (vm_state, task_state) to the API status exactly as
// nova/api/openstack/common.py:_STATE_MAP does.
func serverStatus(vm, task string) string {
	switch vm {
	case vmActive:
		switch task {
		case "rebooting", "reboot_pending", "reboot_started":
			return "REBOOT"
		case "rebooting_hard", "reboot_pending_hard", "reboot_started_hard":
			return "HARD_REBOOT"
		case "updating_password":
			return "PASSWORD"
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return "REBUILD"
		case "migrating":
			return "MIGRATING"
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return "RESIZE"
		}
		return "ACTIVE"
	case vmBuilding:
		return "BUILD"
	case vmStopped:
		switch task {
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return "RESIZE"
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return "REBUILD"
		}
		return "SHUTOFF"
	case vmResized:
		if task == "resize_reverting" {
			return "REVERT_RESIZE"
		}
		return "VERIFY_RESIZE"
	case vmPaused:
		if task == "migrating" {
			return "MIGRATING"
		}
		return "PAUSED"
	case vmSuspended:
		return "SUSPENDED"
	case vmRescued:
		return "RESCUE"
	case vmError:
		switch task {
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return "REBUILD"
		}
		return "ERROR"
	case vmDeleted:
		return "DELETED"
	case vmSoftDel:
		return "SOFT_DELETED"
	case vmShelved:
		return "SHELVED"
	case vmShelvedOf:
		return "SHELVED_OFFLOADED"
	}
	return "UNKNOWN"
}
