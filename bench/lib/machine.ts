/**
 * What the numbers were measured on. Every results file says it, because a
 * benchmark without its machine is not a result.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import amqp from 'amqplib';

export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  rabbitmq: string;
  os: string;
  date: string;
  loadAverage: number[];
  /** Commit measured, with a note when src/ or collector/ had uncommitted changes. */
  commit: string;
}

/** The commit the benchmarks ran against; the tree's own files are what was measured. */
export async function gitCommit(): Promise<string> {
  const run = promisify(execFile);
  try {
    const cwd = new URL('../../', import.meta.url);
    const { stdout: head } = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd });
    // Tracked files only: bench/results/ (this run's output) is untracked and says nothing about the code.
    const { stdout: dirty } = await run('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'collector', 'bench'], { cwd });
    return head.trim() + (dirty.trim() ? ' (with uncommitted changes in src/, collector/ or bench/)' : '');
  } catch {
    return 'unknown (not a git checkout)';
  }
}

/** RabbitMQ's version: what the broker itself announces on connect, else `rabbitmqctl version`. */
export async function rabbitmqVersion(): Promise<string> {
  try {
    const conn = await amqp.connect(AMQP_URL);
    const version = String(conn.connection.serverProperties?.version ?? '');
    await conn.close();
    if (version) return version;
  } catch {
    // fall through to rabbitmqctl
  }
  try {
    const { stdout } = await promisify(execFile)('rabbitmqctl', ['version'], { timeout: 20_000 });
    return stdout.trim();
  } catch {
    return 'unknown (broker unreachable)';
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  const cpus = os.cpus();
  return {
    cores: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    rabbitmq: await rabbitmqVersion(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    commit: await gitCommit(),
  };
}
