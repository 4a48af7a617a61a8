import type { Command } from 'commander';

/** `fave serve`: not available in this build yet. */
export function registerServe(program: Command): void {
  void program;
}
