package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "serve (not available yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("'electric serve' is not available yet in this build")
		},
	}
}
