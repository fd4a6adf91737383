package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "token (not available yet)",
		RunE: func(*cobra.Command, []string) error {
			return errors.New("'electric token' is not available yet in this build")
		},
	}
}
