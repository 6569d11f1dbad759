//! A throwaway PostgreSQL cluster for one test: `initdb` in a temp dir, `pg_ctl start` with
//! its socket in that dir and no TCP listener (so concurrent runs and other engineers' servers
//! never collide), `pg_ctl stop` when dropped — also when the test panics.
//!
//! Binaries: `$RUWAD_PG_BIN` if set, else the newest `/usr/lib/postgresql/<version>/bin`
//! (Debian's `postgresql` package), else `initdb` on `PATH`. When there are none the test
//! fails and says what to install: it never passes without having run.
//!
//! `initdb` refuses to run as root. As root (CI), every server command runs as the
//! `postgres` OS user, which the Debian package creates, through `runuser`, and the temp dir
//! is handed to that user. Durability is off (`fsync=off`…): the cluster lives for one test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

/// Unix-socket "port": only names the socket file inside our private dir.
const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Run server commands as the `postgres` OS user (we are root).
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster, or says why it could not.
    pub fn start() -> Result<Cluster, String> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("ruwad-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a temp dir for the cluster: {e}"))?;
        if as_postgres {
            let out = Command::new("chown")
                .arg(format!("{SUPERUSER}:{SUPERUSER}"))
                .arg(dir.path())
                .output()
                .map_err(|e| format!("chown: {e}"))?;
            check(&out, "chown the cluster dir to the postgres OS user (does it exist? apt-get install postgresql)")?;
        }
        let cluster = Cluster { dir, bin, as_postgres };
        let data = cluster.data_dir();
        let out = cluster
            .server_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "-N"])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        check(&out, "initdb")?;
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            cluster.socket_dir().display()
        );
        let out = cluster
            .server_command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.log_file())
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if let Err(e) = check(&out, "pg_ctl start") {
            let log = std::fs::read_to_string(cluster.log_file()).unwrap_or_default();
            return Err(format!("{e}\nserver log:\n{log}"));
        }
        Ok(cluster)
    }

    /// A superuser connection; its connection task runs on the caller's runtime.
    pub async fn connect(&self) -> Client {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(PORT)
            .user(SUPERUSER)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(20));
        let (client, connection) = config.connect(NoTls).await.expect("connect to the test cluster");
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("postgres connection ended: {e}");
            }
        });
        client
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `program` from the server binaries, as the `postgres` OS user when we are root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", SUPERUSER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let stopped = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
        match stopped {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => eprintln!("pg_ctl stop could not run: {e}"),
        }
    }
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// Where `initdb`, `pg_ctl` and `postgres` are.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("RUWAD_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
        return Err(format!("RUWAD_PG_BIN={} has no initdb", dir.display()));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file());
    on_path.ok_or_else(|| {
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install Debian's `postgresql` package \
         (apt-get install -y postgresql) or point RUWAD_PG_BIN at their directory"
            .to_string()
    })
}
