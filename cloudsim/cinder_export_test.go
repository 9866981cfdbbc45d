package cloudsim

// CinderAttachForTest leaves volume id in-use and attached to serverID, as
// Nova's attach walk does, so that Cinder's own rules for attached volumes
// can be tested without a server.
func (s *Sim) CinderAttachForTest(id, serverID string) {
	defer s.lockNow()()
	v := s.volumes[id]
	now := s.clock.Now()
	v.Attachments = append(v.Attachments, &volAttachment{ID: newUUID(), ServerID: serverID, Device: "/dev/vdb",
		HostName: "compute-0", AttachedAt: now, Status: "attached"})
	s.setVolumeStatus(v, "in-use", now)
}
