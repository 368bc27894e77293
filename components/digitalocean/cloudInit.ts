/**
 * The droplets' cloud-init, generated from typed inputs. It must stay byte-for-byte stable
 * across releases: a changed `userData` replaces the droplet. So it only makes a host that
 * the application layer can reach (Docker from Docker's apt repository, the deploy user, a
 * pinned host key, hardened sshd, unattended security upgrades) and the unit that keeps the
 * host healing (`coop-agent watch`, through the stable path the agent's install updates, so
 * the text never names a version); everything app-level is done later over SSH. Pure: tests
 * compare the text.
 */

export interface CloudInitArgs {
    /** User the deploy logs in as; member of `docker`. */
    deployUser: string;
    /** The deploy user's OpenSSH public key. */
    deployPublicKey: string;
    /** Directory the application layer owns (coop:hostRoot); created for the deploy user. */
    hostRoot: string;
    /** The host's ed25519 key pair, OpenSSH form; the private half makes the result a secret. */
    hostKey: { publicKey: string; privateKey: string };
    /**
     * Where Docker Engine comes from. `docker-apt` (the default, and what every droplet gets):
     * Docker's apt repository for Ubuntu, with the package lists updated and upgraded at first
     * boot. `preinstalled`: the image has it and first boot makes no apt call; only the
     * booted-droplet test passes it (its image is Debian's with docker.io, and this machine has no
     * network to Docker's repository). Nothing else differs between the two.
     */
    docker?: "docker-apt" | "preinstalled";
}

/** DigitalOcean's limit on a droplet's user data: 64 KiB. */
export const USER_DATA_MAX_BYTES = 64 * 1024;

/** Docker's apt repository signing key (fingerprint published by Docker). */
export const DOCKER_APT_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88";

const SSHD_HARDENING = ["PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin no", "PubkeyAuthentication yes", ""].join("\n");
const AUTO_UPGRADES = ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n");
const DOCKER_DAEMON = `${JSON.stringify({ "log-driver": "json-file", "log-opts": { "max-size": "10m", "max-file": "3" }, "live-restore": true })}\n`;

/** The systemd unit of the host's own healing: the agent's reconcile whenever the Docker engine
 * (re)starts or the host boots. It runs ROOT/bin/coop-agent, a link that the agent's install
 * moves to each new version (the unit itself never changes); until the first `up` installs an
 * agent the link is missing and systemd tries again every 5 s, without a start limit. */
export function watchUnit(deployUser: string, hostRoot: string): string {
    return [
        "[Unit]",
        "Description=coop host agent: the proxy and each co-op's live slot back whenever the Docker engine starts",
        "After=docker.service",
        "Wants=docker.service",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        `User=${deployUser}`,
        `ExecStart=${hostRoot}/bin/coop-agent watch`,
        "Restart=always",
        "RestartSec=5",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
}

/** A YAML double-quoted scalar (JSON's string syntax is valid YAML). */
const q = (s: string): string => JSON.stringify(s);

/** A YAML literal block, indented under its key. */
function block(text: string, indent: string): string {
    return `|\n${text
        .replace(/\n$/, "")
        .split("\n")
        .map((l) => (l === "" ? "" : `${indent}${l}`))
        .join("\n")}`;
}

/** The `#cloud-config` document for one droplet. */
export function cloudInit(a: CloudInitArgs): string {
    if (!/^ssh-ed25519 /.test(a.hostKey.publicKey)) {
        throw new Error("cloudInit: hostKey.publicKey must be an ssh-ed25519 key");
    }
    const file = (path: string, content: string, mode: string): string[] => [`  - path: ${q(path)}`, `    permissions: ${q(mode)}`, `    content: ${block(content, "      ")}`];
    return [
        "#cloud-config",
        "disable_root: true",
        "ssh_pwauth: false",
        "ssh_deletekeys: true",
        "ssh_keys:",
        `  ed25519_private: ${block(a.hostKey.privateKey, "    ")}`,
        `  ed25519_public: ${q(a.hostKey.publicKey)}`,
        "groups: [docker]",
        "users:",
        `  - name: ${q(a.deployUser)}`,
        "    groups: [docker]",
        "    shell: /bin/bash",
        "    lock_passwd: true",
        `    ssh_authorized_keys: [${q(a.deployPublicKey)}]`,
        ...(a.docker === "preinstalled"
            ? []
            : [
                  "apt:",
                  "  sources:",
                  "    docker.list:",
                  `      source: ${q("deb [signed-by=$KEY_FILE] https://download.docker.com/linux/ubuntu $RELEASE stable")}`,
                  `      keyid: ${q(DOCKER_APT_KEY_FINGERPRINT)}`,
                  "package_update: true",
                  "package_upgrade: true",
                  "packages: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin, unattended-upgrades]",
              ]),
        "write_files:",
        ...file("/etc/ssh/sshd_config.d/10-coop-hardening.conf", SSHD_HARDENING, "0644"),
        ...file("/etc/apt/apt.conf.d/20auto-upgrades", AUTO_UPGRADES, "0644"),
        ...file("/etc/docker/daemon.json", DOCKER_DAEMON, "0644"),
        ...file("/etc/systemd/system/coop-agent.service", watchUnit(a.deployUser, a.hostRoot), "0644"),
        "runcmd:",
        `  - [install, -d, -o, ${q(a.deployUser)}, -g, ${q(a.deployUser)}, -m, "0755", ${q(a.hostRoot)}]`,
        "  - [systemctl, enable, --now, docker]",
        "  - [systemctl, restart, docker]",
        "  - [systemctl, restart, ssh]",
        "  - [systemctl, daemon-reload]",
        "  - [systemctl, enable, --now, coop-agent.service]",
        "",
    ].join("\n");
}
