/** `gatehouse version`: prints the version. */
import { VERSION } from "../version.ts";
import { type Command, parseCommandArgs } from "./args.ts";

export const versionCommand: Command = {
  help: `Usage: gatehouse version

Prints the gatehouse version and the Deno runtime it was built with.`,
  run(args, io) {
    parseCommandArgs(args, {});
    io.stdout(`gatehouse ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})\n`);
    return Promise.resolve(0);
  },
};
