// Package deps pins the module dependencies that packages adopt as they are written.
package deps

import (
	_ "github.com/google/uuid"
	_ "github.com/gophercloud/gophercloud/v2"
	_ "github.com/gophercloud/gophercloud/v2/openstack"
	_ "github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	_ "github.com/spf13/cobra"
	_ "github.com/vbauerster/mpb/v8"
	_ "go.uber.org/goleak"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/yaml.v3"
)
