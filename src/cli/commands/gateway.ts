import type { Command } from 'commander';

/** `fave gateway`: not available in this build yet. */
export function registerGateway(program: Command): void {
  void program;
}
