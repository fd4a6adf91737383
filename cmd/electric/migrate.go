package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "migrate (not available yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("'electric migrate' is not available yet in this build")
		},
	}
}
