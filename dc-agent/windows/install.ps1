<#
.SYNOPSIS
  Installs pwsync's dc-agent as a Windows service and registers the LSA password filter.
.DESCRIPTION
  Run elevated on every writable domain controller (a change made on a DC without the filter
  is never seen). Steps, each idempotent:
    1. copies the agent to $InstallDir and writes nothing else there;
    2. creates the data folder ($DataDir) with an ACL for SYSTEM and Administrators only;
    3. copies pwsync-filter.dll (x64 on 64-bit Windows) to %SystemRoot%\System32;
    4. APPENDS "pwsync-filter" to HKLM\SYSTEM\CurrentControlSet\Control\Lsa\Notification Packages,
       keeping every package already listed (scecli, rassfm, other vendors' filters);
    5. registers "pwsync-dc-agent" as a service through WinSW (-ServiceWrapper; LocalSystem,
       automatic start, restart on failure) or, without a wrapper, as a SYSTEM scheduled task
       at boot; it runs: node --import tsx <InstallDir>\dc-agent\src\main.ts
       with PWSYNC_CONFIG pointing at $ConfigFile;
    6. starts the service and runs "dc-agent verify".
  LSASS loads notification packages only at boot: the filter captures nothing until the DC
  is rebooted. The script says so at the end; it never reboots by itself.
  Not executable on the Linux CI; keep changes small and reviewed.
.PARAMETER SourceDir    Folder holding the repository checkout (with node_modules) to install from.
.PARAMETER FilterDll    Path of the built pwsync-filter.dll matching this OS's architecture.
.PARAMETER ConfigFile   The agent's YAML configuration (see dc-agent/README.md).
.EXAMPLE
  .\install.ps1 -SourceDir D:\pwsync -FilterDll D:\pwsync\lsa-filter\build\x64\pwsync-filter.dll -ConfigFile C:\ProgramData\pwsync\dc-agent.yaml
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
  [Parameter(Mandatory = $true)][string]$SourceDir,
  [Parameter(Mandatory = $true)][string]$FilterDll,
  [Parameter(Mandatory = $true)][string]$ConfigFile,
  [string]$InstallDir = "$env:ProgramFiles\pwsync",
  [string]$DataDir = "$env:ProgramData\pwsync\dc-agent",
  [string]$NodeExe = (Get-Command node.exe -ErrorAction Stop).Source,
  # WinSW-x64.exe (or another SCM wrapper with the same CLI) to run the agent as a real service.
  [string]$ServiceWrapper
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ServiceName = 'pwsync-dc-agent'
$PackageName = 'pwsync-filter'
$LsaKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Lsa'

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { throw 'Run this script elevated (as Administrator).' }
foreach ($p in @($SourceDir, $FilterDll, $ConfigFile)) { if (-not (Test-Path $p)) { throw "Not found: $p" } }
if ([Environment]::Is64BitOperatingSystem) {
  # A 32-bit DLL in a 64-bit LSASS is not loaded (and logs nothing useful): check the PE machine field.
  $bytes = [IO.File]::ReadAllBytes($FilterDll)
  $pe = [BitConverter]::ToInt32($bytes, 0x3C)
  $machine = [BitConverter]::ToUInt16($bytes, $pe + 4)
  if ($machine -ne 0x8664) { throw "$FilterDll is not an x64 DLL (machine 0x$('{0:X}' -f $machine)); use the x64 build on this OS." }
}

# 1. agent files
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
if ($PSCmdlet.ShouldProcess($InstallDir, 'copy agent')) {
  robocopy $SourceDir $InstallDir /MIR /XD .git .state /NFL /NDL /NJH /NJS | Out-Null
  if ($LASTEXITCODE -ge 8) { throw "robocopy failed with $LASTEXITCODE" }
}

# 2. data folder: SYSTEM and Administrators only, no inheritance (sealed changes only, still ours alone)
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
icacls $DataDir /inheritance:r /grant:r 'SYSTEM:(OI)(CI)F' 'Administrators:(OI)(CI)F' | Out-Null

# 2b. spool folder: the filter writes there while the agent is down, and refuses any folder not
#     owned by SYSTEM with only SYSTEM in an uninherited DACL (event 2009). A folder someone
#     pre-created is replaced, not reused (ProgramData lets Users create folders).
$spool = "$env:ProgramData\pwsync\spool"
if (Test-Path $spool) {
  $acl = Get-Acl $spool
  $onlySystem = ($acl.Owner -eq 'NT AUTHORITY\SYSTEM') -and $acl.AreAccessRulesProtected -and
    (@($acl.Access | Where-Object { $_.IdentityReference -ne 'NT AUTHORITY\SYSTEM' -or $_.IsInherited }).Count -eq 0) -and
    -not ((Get-Item $spool -Force).Attributes -band [IO.FileAttributes]::ReparsePoint)
  if (-not $onlySystem) { throw "$spool exists and is not SYSTEM-only (owner $($acl.Owner)); check who made it, remove it, and run install again." }
} else {
  New-Item -ItemType Directory -Force -Path $spool | Out-Null
  icacls $spool /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' | Out-Null
  icacls $spool /setowner '*S-1-5-18' | Out-Null
}

# 3. filter DLL
$target = Join-Path $env:SystemRoot "System32\$PackageName.dll"
if ((Test-Path $target) -and ((Get-FileHash $target).Hash -ne (Get-FileHash $FilterDll).Hash)) {
  # LSASS holds the loaded DLL open: an upgrade needs uninstall (or disable) + reboot first.
  try { Copy-Item $FilterDll $target -Force } catch { throw "$target is in use by LSASS; run uninstall.ps1, reboot, then install again." }
} elseif (-not (Test-Path $target)) {
  Copy-Item $FilterDll $target
}

# 4. Notification Packages: append, never replace
$packages = @((Get-ItemProperty -Path $LsaKey -Name 'Notification Packages').'Notification Packages')
if ($packages -notcontains $PackageName) {
  $new = @($packages | Where-Object { $_ -ne '' }) + $PackageName
  Set-ItemProperty -Path $LsaKey -Name 'Notification Packages' -Type MultiString -Value $new
  Write-Host "Notification Packages: $($new -join ', ')"
} else {
  Write-Host "Notification Packages already lists $PackageName"
}

# 5. service. node.exe does not speak the service control protocol (SCM would kill it with
# error 1053 after 30 s), so it runs under WinSW (https://github.com/winsw/winsw, one .exe,
# MIT) when -ServiceWrapper is given; otherwise as a SYSTEM scheduled task at boot that
# restarts on failure (same account, same start-before-logon, no SCM entry).
$main = Join-Path $InstallDir 'dc-agent\src\main.ts'
if ($ServiceWrapper) {
  $wrapper = Join-Path $InstallDir "$ServiceName.exe"
  Copy-Item $ServiceWrapper $wrapper -Force
  @"
<service>
  <id>$ServiceName</id>
  <name>pwsync DC agent</name>
  <description>Hands password changes captured by the pwsync LSA filter to pwsync ingest</description>
  <executable>$NodeExe</executable>
  <arguments>--import tsx "$main"</arguments>
  <workingdirectory>$InstallDir</workingdirectory>
  <env name="PWSYNC_CONFIG" value="$ConfigFile"/>
  <env name="PWSYNC_AGENT__DATA_DIR" value="$DataDir"/>
  <startmode>Automatic</startmode>
  <serviceaccount><username>LocalSystem</username></serviceaccount>
  <onfailure action="restart" delay="5 sec"/>
  <onfailure action="restart" delay="30 sec"/>
  <resetfailure>1 day</resetfailure>
  <stoptimeout>15 sec</stoptimeout>
  <log mode="none"/>
</service>
"@ | Set-Content -Encoding UTF8 (Join-Path $InstallDir "$ServiceName.xml")
  if (-not (Get-Service $ServiceName -ErrorAction SilentlyContinue)) { & $wrapper install | Out-Null }
  Start-Service $ServiceName
} else {
  $action = New-ScheduledTaskAction -Execute $NodeExe -Argument "--import tsx `"$main`"" -WorkingDirectory $InstallDir
  $trigger = New-ScheduledTaskTrigger -AtStartup
  $settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries
  $taskPrincipal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
  [Environment]::SetEnvironmentVariable('PWSYNC_CONFIG', $ConfigFile, 'Machine')
  [Environment]::SetEnvironmentVariable('PWSYNC_AGENT__DATA_DIR', $DataDir, 'Machine')
  Register-ScheduledTask -TaskName $ServiceName -Action $action -Trigger $trigger -Settings $settings -Principal $taskPrincipal -Force | Out-Null
  Start-ScheduledTask -TaskName $ServiceName
}

# 6. verify
Push-Location $InstallDir
try {
  $env:PWSYNC_CONFIG = $ConfigFile
  & $NodeExe --import tsx $main verify
  if ($LASTEXITCODE -ne 0) { Write-Warning 'dc-agent verify reported failures (see the table above).' }
} finally { Pop-Location }

Write-Warning 'A REBOOT of this domain controller is required before the password filter captures changes (LSASS loads notification packages only at boot).'
