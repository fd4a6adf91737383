package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDashboardCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dashboard",
		Short: "dashboard (not available yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("'electric dashboard' is not available yet in this build")
		},
	}
}
