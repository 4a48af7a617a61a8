import type { Command } from 'commander';

/** `fave report`: not available in this build yet. */
export function registerReport(program: Command): void {
  void program;
}
