import type { Command } from 'commander';

/** `fave visualize`: not available in this build yet. */
export function registerVisualize(program: Command): void {
  void program;
}
