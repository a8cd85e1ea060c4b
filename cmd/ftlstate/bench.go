package main

import "github.com/spf13/cobra"

func (a *app) benchCommand() *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Benchmark the backends (not yet)", Hidden: true, Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return usageErrorf("bench: not built yet") }}
}
