package ops

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// NotificationsFromClouds returns the notification URL that clouds.yaml
// gives cloud, "" if none:
//
//	clouds:
//	  mycloud:
//	    auth: ...
//	    ostask:
//	      notifications: amqp://user:password@rabbit.example:5672/
//
// It reads the first clouds.yaml of OS_CLIENT_CONFIG_FILE, ./clouds.yaml,
// ~/.config/openstack/clouds.yaml and /etc/openstack/clouds.yaml, as the
// openstack CLI does; other clients ignore the ostask key.
func NotificationsFromClouds(cloud string) (string, error) {
	var paths []string
	if p := os.Getenv("OS_CLIENT_CONFIG_FILE"); p != "" {
		paths = append(paths, p)
	}
	paths = append(paths, "clouds.yaml")
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".config", "openstack", "clouds.yaml"))
	}
	paths = append(paths, "/etc/openstack/clouds.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("clouds.yaml: %w", err)
		}
		var f struct {
			Clouds map[string]struct {
				Ostask struct {
					Notifications string `yaml:"notifications"`
				} `yaml:"ostask"`
			} `yaml:"clouds"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			return "", fmt.Errorf("clouds.yaml %s: %w", p, err)
		}
		return f.Clouds[cloud].Ostask.Notifications, nil
	}
	return "", nil
}
